"""All settings, read from the environment in one place and validated once.

Logic never reads ``os.environ``: handlers ask :func:`get_settings` once per
process and pass what they need down. An invalid value stops start-up with a
message naming the variable and what was expected (:class:`ConfigError`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _str(value: str) -> str:
    return value


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"an integer between {lo} and {hi}") from None
        if not lo <= number <= hi:
            raise ValueError(f"an integer between {lo} and {hi}")
        return number

    return parse


def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError("a decimal number such as 0.35") from None
    if not number.is_finite():
        raise ValueError("a finite decimal number")
    return number


def _decimal_range(lo: Decimal | None = None, hi: Decimal | None = None,
                   hi_open: bool = False) -> Callable[[str], Decimal]:
    """A finite decimal within ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``); ``None`` = unbounded.

    Money settings are checked here, at start-up, so a bad value stops the
    process with the variable's name instead of failing later inside a handler.
    """
    upper = ")" if hi_open else "]"
    wanted = f"a decimal number in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{upper}"

    def parse(value: str) -> Decimal:
        number = _decimal(value)
        too_high = hi is not None and (number >= hi if hi_open else number > hi)
        if (lo is not None and number < lo) or too_high:
            raise ValueError(wanted)
        return number

    return parse


_NON_NEGATIVE = _decimal_range(Decimal(0))
# A fraction, not a percentage: TARIFF_VAT_RATE=19 would bill 1900 % VAT.
_FRACTION = _decimal_range(Decimal(0), Decimal(1), hi_open=True)
# The balance never goes below the floor; 0 = no credit, negative = overdraft up to that amount.
# A positive floor would refuse every session of a new wallet at the default opening balance.
_WALLET_FLOOR = _decimal_range(Decimal(-1_000_000), Decimal(0))
_WALLET_OPENING = _decimal_range(Decimal(0), Decimal(1_000_000))


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("true or false")


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("an ISO 4217 currency code such as EUR")
    return value


_SCHEDULE = re.compile(r"(off|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))")


def _schedule(value: str) -> str:
    if not _SCHEDULE.fullmatch(value.strip()):
        raise ValueError("'off', 'rate(N minutes|hours|days)' or 'cron(...)'")
    return value.strip()


def _stage(value: str) -> str:
    if value not in {"local", "dev", "prod", "test"}:
        raise ValueError("one of local, dev, prod, test")
    return value


_EVENT_SOURCE = re.compile(r"[A-Za-z0-9._\-/]{1,256}")


def _event_source(value: str) -> str:
    # EventBridge's own rule for a Source; "aws." is reserved for AWS services, so no producer of ours has it.
    if not _EVENT_SOURCE.fullmatch(value) or value.startswith("aws."):
        raise ValueError("an EventBridge source: 1-256 of A-Z a-z 0-9 . _ - /, not starting with 'aws.'")
    return value


_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def _secret_name(value: str) -> str:
    # A name, never an ARN: the IAM policies grant "secret:<name>-??????" (appsync/policies.py).
    if value and (not _SECRET_NAME.fullmatch(value) or value.startswith("arn:")):
        raise ValueError("a Secrets Manager secret name such as jucr/prod/mongodb-uri (not an ARN)")
    return value


def _setting(env: str, default: str | None, parse: Callable[[str], Any] = _str, secret: bool = False) -> Any:
    return field(default=None, metadata={"env": env, "default": default, "parse": parse, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Typed settings. Each field names its environment variable and default."""

    stage: str = _setting("JUCR_STAGE", "local", _stage)
    app_name: str = _setting("JUCR_APP_NAME", "jucr", _str)
    aws_region: str = _setting("AWS_DEFAULT_REGION", "eu-central-1")
    aws_endpoint_url: str = _setting("AWS_ENDPOINT_URL", "")
    event_bus_name: str = _setting("EVENT_BUS_NAME", "jucr-local")
    # The Session Service's bus Source: the only one billing trusts for SESSION_ENDED (rules, consumer, bus policy).
    session_event_source: str = _setting("SESSION_EVENT_SOURCE", "jucr.session", _event_source)

    mongodb_uri: str = _setting("MONGODB_URI", "", secret=True)
    # A Secrets Manager name, not a value (so not secret): deployed stages keep the URI there, not in the env.
    mongodb_uri_secret_id: str = _setting("MONGODB_URI_SECRET_ID", "", _secret_name)
    mongodb_db: str = _setting("MONGODB_DB", "jucr")
    mongodb_timeout_ms: int = _setting("MONGODB_TIMEOUT_MS", "5000", _int_range(100, 60000))

    log_level: str = _setting("LOG_LEVEL", "INFO")

    ocm_api_url: str = _setting("OCM_API_URL", "https://api.openchargemap.io/v3")
    ocm_api_key: str = _setting("OCM_API_KEY", "", secret=True)
    ocm_api_key_secret_id: str = _setting("OCM_API_KEY_SECRET_ID", "", _secret_name)
    ocm_page_size: int = _setting("OCM_PAGE_SIZE", "1000", _int_range(1000, 10000))
    ocm_overlap_minutes: int = _setting("OCM_OVERLAP_MINUTES", "15", _int_range(0, 1440))
    ocm_timeout_seconds: int = _setting("OCM_TIMEOUT_SECONDS", "30", _int_range(1, 300))
    ocm_retries: int = _setting("OCM_RETRIES", "4", _int_range(3, 5))
    ocm_sync_schedule: str = _setting("OCM_SYNC_SCHEDULE", "rate(6 hours)", _schedule)
    ocm_full_sweep_schedule: str = _setting("OCM_FULL_SWEEP_SCHEDULE", "rate(1 day)", _schedule)
    ocm_countries: str = _setting("OCM_COUNTRIES", "")
    ocm_time_budget_seconds: int = _setting("OCM_TIME_BUDGET_SECONDS", "60", _int_range(5, 900))

    jwt_issuer: str = _setting("JWT_ISSUER", "https://auth.jucr.local")
    jwt_audience: str = _setting("JWT_AUDIENCE", "jucr-api")
    jwt_private_key: str = _setting("JWT_PRIVATE_KEY", "", secret=True)
    jwt_public_key: str = _setting("JWT_PUBLIC_KEY", "")
    jwt_key_secret_id: str = _setting("JWT_KEY_SECRET_ID", "", _secret_name)
    # The authorizer's own secret: public keys only, written by the deploy step from the signing-key secret.
    jwt_public_keys_secret_id: str = _setting("JWT_PUBLIC_KEYS_SECRET_ID", "", _secret_name)
    jwt_previous_public_keys: str = _setting("JWT_PREVIOUS_PUBLIC_KEYS", "")
    jwt_access_ttl_seconds: int = _setting("JWT_ACCESS_TTL_SECONDS", "900", _int_range(60, 86400))
    jwt_refresh_ttl_seconds: int = _setting("JWT_REFRESH_TTL_SECONDS", "2592000", _int_range(3600, 31536000))
    bcrypt_cost: int = _setting("BCRYPT_COST", "12", _int_range(4, 16))
    # --- auth: sign-in throttling, see chalicelib/auth/throttle.py (a delay, never a lock) ---
    # Failures per email and source before each further attempt waits min(cap, base * 2**(failures - free)).
    login_free_failures: int = _setting("LOGIN_FREE_FAILURES", "5", _int_range(1, 100))
    login_delay_base_seconds: int = _setting("LOGIN_DELAY_BASE_SECONDS", "30", _int_range(1, 3600))
    login_delay_cap_seconds: int = _setting("LOGIN_DELAY_CAP_SECONDS", "900", _int_range(1, 86400))
    # Failures one source may have across all emails per window, before its attempts wait for the window's end.
    login_source_max_failures: int = _setting("LOGIN_SOURCE_MAX_FAILURES", "50", _int_range(1, 100000))
    login_source_window_seconds: int = _setting("LOGIN_SOURCE_WINDOW_SECONDS", "900", _int_range(1, 86400))
    # --- auth: authorizer deny-list and cache cap, see chalicelib/auth/authorizer.py ---
    # Comma-separated "userId" (refuse every token) or "userId:N" (refuse tokens with ver < N).
    jwt_revoked_users: str = _setting("JWT_REVOKED_USERS", "")
    # Upper bound for the authorizer's ttlOverride (AppSync caches a verdict at most this long).
    jwt_authorizer_cache_seconds: int = _setting("JWT_AUTHORIZER_CACHE_SECONDS", "300", _int_range(0, 3600))

    currency: str = _setting("BILLING_CURRENCY", "EUR", _currency)
    wallet_opening_balance: Decimal = _setting("WALLET_OPENING_BALANCE", "0", _WALLET_OPENING)
    wallet_floor: Decimal = _setting("WALLET_FLOOR", "0", _WALLET_FLOOR)
    tariff_energy_per_kwh: Decimal = _setting("TARIFF_ENERGY_PER_KWH", "0.39", _NON_NEGATIVE)
    tariff_time_per_hour: Decimal = _setting("TARIFF_TIME_PER_HOUR", "0", _NON_NEGATIVE)
    tariff_time_step_seconds: int = _setting("TARIFF_TIME_STEP_SECONDS", "60", _int_range(1, 3600))
    tariff_flat_fee: Decimal = _setting("TARIFF_FLAT_FEE", "0", _NON_NEGATIVE)
    tariff_idle_per_hour: Decimal = _setting("TARIFF_IDLE_PER_HOUR", "0", _NON_NEGATIVE)
    tariff_idle_free_minutes: int = _setting("TARIFF_IDLE_FREE_MINUTES", "0", _int_range(0, 1440))
    tariff_vat_rate: Decimal = _setting("TARIFF_VAT_RATE", "0.19", _FRACTION)
    # --- billing: plausible SESSION_ENDED only, see chalicelib/billing/plausibility.py ---
    # A session that ended longer ago, or later than now plus the skew, is refused (permanent, audited).
    session_max_age_days: int = _setting("SESSION_MAX_AGE_DAYS", "30", _int_range(1, 365))
    session_clock_skew_seconds: int = _setting("SESSION_CLOCK_SKEW_SECONDS", "300", _int_range(0, 3600))

    max_receive_count: int = _setting("SQS_MAX_RECEIVE_COUNT", "5", _int_range(1, 20))
    redrive_limit: int = _setting("DLQ_REDRIVE_LIMIT", "3", _int_range(0, 10))
    billing_latency_slo_ms: int = _setting("BILLING_LATENCY_SLO_MS", "5000", _int_range(100, 600000))
    # --- billing: SQS visibility back-off of chalicelib/events/consumer.py ---
    # A transiently failed record becomes visible again after min(cap, base * 2**(receiveCount-1)) seconds.
    sqs_backoff_base_seconds: int = _setting("SQS_BACKOFF_BASE_SECONDS", "2", _int_range(0, 900))
    sqs_backoff_cap_seconds: int = _setting("SQS_BACKOFF_CAP_SECONDS", "300", _int_range(0, 43200))
    # --- dlq: reconciler re-drive delay and alarm thresholds, see chalicelib/dlq, appsync/alarms.py ---
    # First re-drive waits this long (SQS DelaySeconds), doubling per re-drive, capped at 900 s by SQS.
    dlq_redrive_delay_seconds: int = _setting("DLQ_REDRIVE_DELAY_SECONDS", "30", _int_range(0, 900))
    # Alarm when the oldest message of a dead-letter queue is older than this.
    dlq_age_alarm_seconds: int = _setting("DLQ_AGE_ALARM_SECONDS", "3600", _int_range(60, 1209600))
    # Alarm when a consumer Lambda's Errors/Invocations exceeds this percentage over 5 minutes.
    alarm_error_rate_percent: int = _setting("ALARM_ERROR_RATE_PERCENT", "5", _int_range(1, 100))

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_uri and not self.mongodb_uri_secret_id

    def queue_name(self, short: str) -> str:
        """Full queue name: app, stage and the short name the CLI accepts."""
        return f"{self.app_name}-{self.stage}-{short}"

    def redacted(self) -> dict[str, Any]:
        """Settings safe to print: secrets replaced by a marker."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if f.metadata["secret"] and value else str(value)
        return out


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ``; raise :class:`ConfigError` on the first bad value."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        meta = f.metadata
        raw = env.get(meta["env"], meta["default"])
        if raw is None:
            raise ConfigError(f"{meta['env']} is required")
        try:
            values[f.name] = meta["parse"](raw)
        except ValueError as exc:
            shown = "***" if meta["secret"] else repr(raw)
            raise ConfigError(f"{meta['env']}={shown} is invalid: expected {exc}") from None
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read on first use (never at import time)."""
    return load_settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
