"""Sign-in throttling: guessing is slow, and an attacker cannot turn it against the owner.

Two counts, each checked and taken before bcrypt runs, each one guarded update on one
document (so parallel guesses cannot pass a limit between them):

- **per email and source** (the *pair*): ``free_failures`` failures pass; after them
  each further attempt is checked only once ``min(cap, base * 2**(failures - free))``
  seconds have passed since the last failure. That is a delay, not a lock: when it has
  passed, the right password signs in and clears the count. Refused attempts count
  for nothing, so hammering never pushes the delay on.
- **per source** across all emails: at most ``source_max_failures`` failures per
  window, so spraying one password over many emails is slowed too. A pair that has
  signed in from that source before (remembered ``TRUSTED_PAIR_SECONDS``) is not held
  to it: otherwise an attacker behind the owner's NAT or carrier-grade NAT could spend
  the source's failures on made-up emails each window and refuse the owner for good.
  An attempt the source refuses leaves the pair untouched; one the pair refuses gives
  the source its count back.

Why the pair and not the email alone: a delay shared by everyone who types that email
is a lock an attacker can keep up. One guess fired the instant each delay ends, once
per ``cap``, beats the owner to every slot. Keyed by source as well, the attacker's
guesses only delay the attacker's own network; the owner, on another network, is
never refused by them (on the same one, e.g. behind one NAT, at most ``cap`` after the
last failure; a first sign-in from a network being sprayed waits for the source's
window at most). The cost: an attacker with many addresses gets ``free_failures`` and a
few delayed guesses per address per email. That is left to the WAF's per-address
rate rule (``appsync/waf.py``), bcrypt and the 10-character minimum; any count that
refused every source for an email would bring the lock back.

Without a source (an event that names none) the pair is the email alone and the
per-source count is skipped: a shared "unknown" source would throttle everybody.

The documents' ``_id``s are HMAC-SHA256 under a per-stage pepper (``login_pepper``), not
plain hashes: with a plain hash, anyone who read the collection and knew an email could
find that person's IPv4 address in about 2**32 hashes. The pepper lives in Secrets Manager
(``LOGIN_KEY_PEPPER_SECRET_ID``, readable by the auth resolver only); the throttle gets
its bytes, never a client. Changing it forgets every count and every trusted pair.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.auth.keys import DEV_STAGES
from chalicelib.auth.settings import AuthSettings
from chalicelib.config import ConfigError
from chalicelib.contracts.errors import TooManyAttempts
from chalicelib.observability.logs import logger
from chalicelib.store import TransientStoreError
from chalicelib.timestamps import aware_utc

# How long a pair's failures are remembered without a success. Longer than any cap, so
# waiting out a delay never wipes the count and hands out ``free_failures`` again.
FAILURE_MEMORY_SECONDS = 86400
# Each round ends in a count or a refusal unless a success or a reset lands between its
# writes; a few rounds are plenty, and running out is "busy", never a free guess.
_ATTEMPT_ROUNDS = 8
# 2**40 seconds outlasts any cap; the exponent stops there so a huge count stays cheap.
_MAX_DOUBLINGS = 40
# How long a pair that signed in is exempt from its source's limit (renewed by each sign-in).
TRUSTED_PAIR_SECONDS = 30 * 86400
# The pepper of stages ``local`` and ``test`` when none is configured: their counts are not secret,
# and a fixed value lets every local process (chalice, the package emulators, tests) agree on keys.
DEV_LOGIN_PEPPER = b"jucr-dev-login-pepper: not a secret, local and test stages only"
# 32 random bytes as the deploy step writes them (64 hex characters); shorter is guessable.
MIN_PEPPER_CHARS = 32


def login_pepper(configured: str, stage: str) -> bytes:
    """The pepper's bytes from the resolved ``LOGIN_KEY_PEPPER``/``LOGIN_KEY_PEPPER_SECRET_ID`` value ("" if unset)."""
    if not configured:
        if stage in DEV_STAGES:
            return DEV_LOGIN_PEPPER
        raise ConfigError(f"LOGIN_KEY_PEPPER_SECRET_ID or LOGIN_KEY_PEPPER is required in stage {stage!r}")
    if len(configured) < MIN_PEPPER_CHARS:
        raise ConfigError(f"LOGIN_KEY_PEPPER (or its secret) must be at least {MIN_PEPPER_CHARS} characters")
    return configured.encode()


@dataclass(frozen=True)
class Gate:
    """Admits an attempt when ``low <= failures <= high`` and the last failure is no later than ``last_by``."""

    low: int
    high: int | None = None  # None: no upper bound
    last_by: dt.datetime | None = None  # None: no wait


@dataclass(frozen=True)
class LoginThrottle:
    """The throttle's settings and the delay they give."""

    free_failures: int
    delay_base_seconds: int
    delay_cap_seconds: int
    source_max_failures: int
    source_window_seconds: int
    pepper: bytes = field(repr=False)  # the documents' HMAC key (``login_pepper``); never shown

    @classmethod
    def from_settings(cls, s: AuthSettings, pepper: bytes) -> LoginThrottle:
        """``pepper`` comes resolved (``login_pepper``): this module never reads a secret itself."""
        return cls(free_failures=s.login_free_failures, delay_base_seconds=s.login_delay_base_seconds,
                   delay_cap_seconds=s.login_delay_cap_seconds, source_max_failures=s.login_source_max_failures,
                   source_window_seconds=s.login_source_window_seconds, pepper=pepper)

    def delay_seconds(self, failures: int) -> int:
        """How long after the last failure the next attempt waits, with ``failures`` counted."""
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, _MAX_DOUBLINGS)
        return min(self.delay_cap_seconds, self.delay_base_seconds * 2 ** doublings)

    def pair_gates(self, now: dt.datetime) -> list[Gate]:
        """``delay_seconds`` as filters: one gate per count until the delay reaches the cap, then one for the rest."""
        gates = [Gate(0, self.free_failures - 1)]
        failures = self.free_failures
        while (delay := self.delay_seconds(failures)) < self.delay_cap_seconds:
            gates.append(Gate(failures, failures, now - dt.timedelta(seconds=delay)))
            failures += 1
        gates.append(Gate(failures, None, now - dt.timedelta(seconds=self.delay_cap_seconds)))
        return gates


@dataclass(frozen=True)
class Admission:
    """The counts an admitted attempt took: given back by ``settle_success``."""

    pair_key: str
    source_key: str | None
    trusted_key: str  # the pair's trust document, so settle_success needs no pepper
    # Until when the pair is trusted (None: not, or no source): renewed on success only when half spent.
    trusted_until: dt.datetime | None = None


def _keyed(pepper: bytes, message: str) -> str:
    # HMAC, not a salted hash: without the pepper no guess of email and address can be checked.
    return hmac.new(pepper, message.encode(), hashlib.sha256).hexdigest()


def pair_key(pepper: bytes, email: str, source: str | None) -> str:
    # Keyed by the email, not the user: unknown emails are throttled too, so a delay reveals nothing.
    return _keyed(pepper, f"login-pair:{email}\n{source or ''}")


def source_key(pepper: bytes, source: str) -> str:
    return _keyed(pepper, f"login-source:{source}")


def trusted_key(pepper: bytes, pair: str) -> str:
    return _keyed(pepper, f"login-trusted:{pair}")


def admit(repo: Any, throttle: LoginThrottle, email: str, source: str | None, now: dt.datetime) -> Admission:
    """Count this attempt as a failure for its source and its pair, or raise ``TooManyAttempts``.

    Counted before bcrypt runs, so parallel guesses get no more checks than the limits
    allow; a success gives the counts back (``settle_success``). The source is counted
    first, so its refusal leaves the pair as it was, and given back if the pair refuses.
    """
    pair = pair_key(throttle.pepper, email, source)
    trusted = trusted_key(throttle.pepper, pair)
    trusted_until = None if source is None else _trusted_until(repo, trusted, now)
    key = None if source is None or trusted_until is not None else source_key(throttle.pepper, source)
    if key is not None:
        window_end = now + dt.timedelta(seconds=throttle.source_window_seconds)
        limit = throttle.source_max_failures
        _count(repo, key, now, [Gate(0, limit - 1)], {"expiresAt": window_end}, {},
               lambda doc: _source_wait(limit, doc, now), "source")
    memory = now + dt.timedelta(seconds=FAILURE_MEMORY_SECONDS)
    try:
        _count(repo, pair, now, throttle.pair_gates(now), {"lastFailureAt": now, "expiresAt": memory},
               {"lastFailureAt": now, "expiresAt": memory}, lambda doc: _pair_wait(throttle, doc, now), "email")
    except (TooManyAttempts, TransientStoreError):
        if key is not None:
            repo.release_failure(key, now)  # not an attempt after all: the source gets its count back
        raise
    return Admission(pair, key, trusted, trusted_until)


def settle_success(repo: Any, admission: Admission, now: dt.datetime) -> None:
    """A success: the pair's failures are forgotten, the pair is trusted, the source gets its count back."""
    repo.clear_attempts(admission.pair_key)
    if admission.source_key is not None:
        repo.release_failure(admission.source_key, now)
    half = dt.timedelta(seconds=TRUSTED_PAIR_SECONDS / 2)
    sourced = admission.source_key is not None or admission.trusted_until is not None
    if sourced and (admission.trusted_until is None or admission.trusted_until - now < half):
        repo.remember(admission.trusted_key, now + dt.timedelta(seconds=TRUSTED_PAIR_SECONDS))


def _trusted_until(repo: Any, trusted: str, now: dt.datetime) -> dt.datetime | None:
    """Until when this email is trusted from this source (it signed in from there lately), or ``None``."""
    doc = repo.find_attempts(trusted) or {}
    return aware_utc(doc.get("expiresAt")) if _live(doc, now) else None


def _count(repo: Any, key: str, now: dt.datetime, gates: list[Gate], first: Mapping[str, Any],
           stretch: Mapping[str, dt.datetime], wait: Callable[[Mapping[str, Any]], int], limit: str) -> int:
    """Start or add to the document ``key``; the failures counted, or ``TooManyAttempts`` when no gate admits."""
    for _ in range(_ATTEMPT_ROUNDS):
        if repo.start_attempts(key, now, first):
            return 1
        failures = repo.add_failure(key, now, gates, stretch)
        if failures is not None:
            return failures
        seconds = wait(repo.find_attempts(key) or {})
        if seconds > 0:
            # INFO, not WARNING: under attack this is every request, and WAF's metrics are the alarm.
            logger.info("sign-in delayed", extra={"limit": limit, "retryAfterSeconds": seconds})
            raise too_many_attempts(seconds)
        # cleared by a success, or ended, between our writes: count again
    raise TransientStoreError("sign-in attempts are contended; try again")


def _live(doc: Mapping[str, Any], now: dt.datetime) -> bool:
    ends = aware_utc(doc.get("expiresAt"))
    return ends is not None and ends > now


def _pair_wait(throttle: LoginThrottle, doc: Mapping[str, Any], now: dt.datetime) -> int:
    last = aware_utc(doc.get("lastFailureAt"))
    if not _live(doc, now) or last is None:
        return 0
    ready = last + dt.timedelta(seconds=throttle.delay_seconds(int(doc.get("failures", 0))))
    return math.ceil((ready - now).total_seconds())


def _source_wait(limit: int, doc: Mapping[str, Any], now: dt.datetime) -> int:
    if not _live(doc, now) or int(doc.get("failures", 0)) < limit:
        return 0
    return math.ceil((aware_utc(doc["expiresAt"]) - now).total_seconds())


def too_many_attempts(seconds: int) -> TooManyAttempts:
    """The refusal: when to try again, in words and in ``retryAfterSeconds``; nothing about which count."""
    wait = f"{seconds} second(s)" if seconds < 120 else f"{-(-seconds // 60)} minute(s)"
    return TooManyAttempts(f"Too many failed sign-ins. Try again in {wait}.",
                           details={"retryAfterSeconds": seconds})
