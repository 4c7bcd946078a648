"""Guessing is slow, and never a lockout of the owner (the shipped defaults, on the embedded store).

Before: five wrong guesses locked the email for ``LOGIN_LOCK_SECONDS`` whoever made them,
so anyone who knew the owner's email could keep the owner out, and again right after
each lock ended. Now the delay is per email *and source* (``chalicelib/auth/throttle.py``)
and a source is also limited across emails; the clock is a fake one, nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from functools import partial

import pytest

from chalicelib.auth import service
from chalicelib.auth.keys import KeyRing
from chalicelib.auth.repository import INDEXES, AuthRepository
from chalicelib.auth.service import AuthDeps, AuthPolicy
from chalicelib.auth.sources import source_of
from chalicelib.auth.throttle import login_pepper
from chalicelib.auth.throttle import pair_key as throttle_pair
from chalicelib.contracts.errors import TooManyAttempts, Unauthorized
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes
from tests.concurrency import run_concurrently

OWNER = {"email": "owner@example.com", "name": "Olga Owner", "password": "correct horse battery",
         "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}
SIGN_IN = {"email": "owner@example.com", "password": "correct horse battery"}
GUESS = {"email": "owner@example.com", "password": "hunter2hunter2"}
CLOUDFRONT = "130.176.27.160"  # the node AppSync's origin appends after the viewer's address


def network(viewer: str, forged: str = "") -> str | None:
    """The source of a resolver event from ``viewer``, with whatever the caller wrote in front."""
    header = ", ".join(part for part in (forged, viewer, CLOUDFRONT) if part)
    return source_of({"request": {"headers": {"x-forwarded-for": header}}, "identity": None})


ATTACKER, OWNER_HOME = network("203.0.113.66"), network("198.51.100.7")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def deps(db, settings) -> AuthDeps:
    ensure_indexes(db, INDEXES)
    clock = Clock()
    pepper = login_pepper(settings.auth.login_key_pepper, settings.core.stage)  # as auth/entry.py resolves it
    policy = AuthPolicy.from_settings(settings.auth, settings.authorizer, pepper)
    deps = AuthDeps(repo=AuthRepository(db), publisher=RecordingPublisher(clock=clock), clock=clock,
                    keys=KeyRing.generate(), policy=policy)
    service.register(deps, OWNER)
    return deps


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Every bcrypt check the service runs."""
    seen: list[str] = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda pw, stored: seen.append(stored) or real(pw, stored))
    return seen


def _attempt(deps: AuthDeps, attempt: dict, source: str | None) -> str | int:
    """``"ok"``, ``"wrong"`` or the seconds to wait."""
    try:
        service.login(deps, attempt, source=source)
        return "ok"
    except Unauthorized:
        return "wrong"
    except TooManyAttempts as exc:
        return exc.details["retryAfterSeconds"]


def test_an_attacker_guessing_the_owners_email_never_keeps_the_owner_out(deps, checks):
    throttle = deps.policy.throttle
    waits: list[int] = []
    for minute in range(6 * 60):  # six hours of guessing as fast as the throttle lets through
        outcome = _attempt(deps, GUESS, ATTACKER)
        if isinstance(outcome, int):
            waits.append(outcome)
            deps.clock.advance(outcome)  # the attacker fires the instant the delay ends
        if minute % 30 == 0:  # the owner, on their own network, signs in whenever they like
            assert _attempt(deps, SIGN_IN, OWNER_HOME) == "ok"
    assert max(waits) <= throttle.delay_cap_seconds
    attacker_checks = len(checks) - 12  # the owner's twelve sign-ins ran bcrypt too
    elapsed = (deps.clock.now - dt.datetime(2026, 2, 21, 14, 0, tzinfo=dt.UTC)).total_seconds()
    ramp = sum(1 for n in range(10) if throttle.delay_seconds(throttle.free_failures + n) < throttle.delay_cap_seconds)
    assert attacker_checks <= throttle.free_failures + ramp + elapsed // throttle.delay_cap_seconds + 1
    # Behind the attacker's own network (one NAT), right after a guess, the owner waits at most the cap.
    if isinstance(outcome := _attempt(deps, GUESS, ATTACKER), int):
        deps.clock.advance(outcome)
        assert _attempt(deps, GUESS, ATTACKER) == "wrong"
    wait = _attempt(deps, SIGN_IN, ATTACKER)
    assert isinstance(wait, int) and 0 < wait <= throttle.delay_cap_seconds
    deps.clock.advance(wait)
    assert _attempt(deps, SIGN_IN, ATTACKER) == "ok"


def test_without_a_source_the_owner_still_gets_in_within_the_cap(deps):
    """An event naming no source falls back to the email alone: a delay, bounded by the cap, never a lock."""
    for _ in range(20):  # twenty checked guesses, each the instant the delay allows
        if isinstance(outcome := _attempt(deps, GUESS, None), int):
            deps.clock.advance(outcome)
            assert _attempt(deps, GUESS, None) == "wrong"
    wait = _attempt(deps, SIGN_IN, None)
    assert isinstance(wait, int) and wait <= deps.policy.throttle.delay_cap_seconds
    deps.clock.advance(wait)
    assert _attempt(deps, SIGN_IN, None) == "ok"


def test_a_spraying_source_is_slowed_but_not_the_owners_source(deps):
    throttle = deps.policy.throttle
    sprayed = [_attempt(deps, {"email": f"user{n}@example.com", "password": "Summer2026!!"}, ATTACKER)
               for n in range(throttle.source_max_failures)]
    assert sprayed == ["wrong"] * throttle.source_max_failures  # one guess per email: no pair is delayed
    wait = _attempt(deps, {"email": "next@example.com", "password": "Summer2026!!"}, ATTACKER)
    assert isinstance(wait, int) and 0 < wait <= throttle.source_window_seconds
    assert _attempt(deps, SIGN_IN, OWNER_HOME) == "ok"  # the owner's network is not that source
    deps.clock.advance(wait)
    assert _attempt(deps, {"email": "next@example.com", "password": "Summer2026!!"}, ATTACKER) == "wrong"


def test_an_attacker_behind_the_owners_nat_cannot_spend_the_sources_limit_against_the_owner(deps):
    """The same address (carrier-grade NAT, office, VPN): made-up emails fill the source's window, every window.

    The owner has signed in from there before, so that pair is trusted and the source's limit does not hold
    it; the attacker's own guesses at the owner's password still face the pair's capped delay.
    """
    throttle = deps.policy.throttle
    shared = network("100.64.0.9")
    assert _attempt(deps, SIGN_IN, shared) == "ok"  # the owner's phone, last week
    for window in range(3):
        for n in range(throttle.source_max_failures):
            _attempt(deps, {"email": f"nobody{window}-{n}@example.com", "password": "Summer2026!!"}, shared)
        refused = _attempt(deps, {"email": "another@example.com", "password": "Summer2026!!"}, shared)
        assert isinstance(refused, int), "the spraying is slowed"
        assert _attempt(deps, SIGN_IN, shared) == "ok", "the owner is not"
        deps.clock.advance(refused)


def test_an_attempt_the_source_refuses_leaves_the_owners_pair_untouched(deps):
    throttle = deps.policy.throttle
    for n in range(throttle.source_max_failures):
        _attempt(deps, {"email": f"user{n}@example.com", "password": "Summer2026!!"}, ATTACKER)
    for _ in range(throttle.free_failures + 3):  # refused by the source, before any password check
        assert isinstance(_attempt(deps, GUESS, ATTACKER), int)
    pair = throttle_pair(throttle.pepper, OWNER["email"], ATTACKER)
    assert deps.repo.find_attempts(pair) is None, "no failure was counted"


def test_the_source_is_the_address_aws_saw_not_one_the_caller_wrote(deps):
    assert network("203.0.113.66", forged="10.0.0.1") == ATTACKER == network("203.0.113.66", forged="1.2.3.4, 5.6.7.8")
    assert network("2001:db8:1:2::1") == network("2001:db8:1:2:ffff::9")  # one /64, one source
    assert network("2001:db8:1:3::1") != network("2001:db8:1:2::1")
    assert "203.0.113.66" not in ATTACKER
    throttle = deps.policy.throttle
    for n in range(throttle.free_failures):  # a fresh forged prefix on every guess
        assert _attempt(deps, GUESS, network("203.0.113.66", forged=f"10.0.0.{n}")) == "wrong"
    assert isinstance(_attempt(deps, GUESS, network("203.0.113.66", forged="10.9.9.9")), int)


def test_parallel_guesses_cannot_exceed_the_limits(deps, checks):
    throttle = deps.policy.throttle
    outcomes: list[str | int] = []
    barrier = threading.Barrier(12)

    def guess(attempt: dict, source: str | None) -> None:
        barrier.wait()
        outcomes.append(_attempt(deps, attempt, source))

    run_concurrently(*[partial(guess, GUESS, ATTACKER)] * 12)  # one email, one source
    assert len(checks) == throttle.free_failures
    assert sorted(map(str, outcomes)).count("wrong") == throttle.free_failures

    small = replace(deps, policy=replace(deps.policy, throttle=replace(throttle, source_max_failures=4)))
    sprayer, outcomes[:], checks[:] = network("192.0.2.50"), [], []
    barrier = threading.Barrier(10)

    def spray(n: int) -> None:
        barrier.wait()
        outcomes.append(_attempt(small, {"email": f"user{n}@example.com", "password": "Summer2026!!"}, sprayer))

    run_concurrently(*(partial(spray, n) for n in range(10)))  # ten emails, one source
    assert len(checks) == 4
    assert sum(outcome == "wrong" for outcome in outcomes) == 4
