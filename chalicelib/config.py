"""Settings, read from the environment in sections, each validated when first asked for.

A section is a frozen dataclass of the variables one concern reads (:class:`CoreSettings`
here; ``StoreSettings``, ``BillingSettings``, ... in their domains). Each field declares its
environment variable, its default as text (what an operator would write), a marshmallow
field with the rule it must meet, and whether the value is secret. :func:`load_section`
validates exactly one section's variables, so a Lambda checks only what it uses: a
malformed tariff stops the billing consumer, never the authorizer. An invalid value
stops start-up with a :class:`ConfigError` naming the variable and the rule, never a
secret's value.

Logic never reads ``os.environ``: the composition root (``chalicelib.bootstrap``) asks for
a section once per process and passes what it needs down. ``chalicelib.sections`` puts
all sections together for the tools that show or record every setting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar

from marshmallow import Schema, ValidationError, validate
from marshmallow import fields as mf


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def resource_name(app_name: str, stage: str, name: str) -> str:
    """``<app>-<stage>-<name>``: how every AWS resource of a stage is named.

    Chalice names its functions so (``app.py``), and the deploy step, the runtime's queue
    adapter, the bus rules (``<app>-<stage>-to-<short>``), the alarms and the local stack
    name queues, rules, topics and alarms with this one rule, so they agree.
    """
    return f"{stage_prefix(app_name, stage)}-{name}"


def stage_prefix(app_name: str, stage: str) -> str:
    """``<app>-<stage>``: what every resource name of a stage starts with (the AppSync API is named just this)."""
    return f"{app_name}-{stage}"


# --- rules: marshmallow fields whose messages read "expected <rule>" -------------------

def integer(lo: int, hi: int) -> mf.Integer:
    """An integer in ``[lo, hi]``: every count, size and duration has a range an operator can read."""
    rule = f"an integer between {lo} and {hi}"
    return mf.Integer(validate=validate.Range(lo, hi, error=rule),
                      error_messages={"invalid": rule, "too_large": rule})


def decimal(lo: Decimal | None = None, hi: Decimal | None = None, *, hi_open: bool = False) -> mf.Decimal:
    """A finite decimal within ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``); ``None`` = unbounded.

    Decimal, never float: these are money, and ``0.1`` must stay ``0.1``.
    """
    upper = ")" if hi_open else "]"
    rule = f"a decimal number in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{upper}"
    return mf.Decimal(places=None, allow_nan=False,
                      validate=validate.Range(lo, hi, max_inclusive=not hi_open, error=rule),
                      error_messages={"invalid": rule, "special": rule, "too_large": rule})


def one_of(*choices: str) -> mf.String:
    """Exactly one of ``choices``; the message lists them, so the operator sees what is allowed."""
    return mf.String(validate=validate.OneOf(choices, error=f"one of {', '.join(choices)}"))


def matching(pattern: str, rule: str) -> mf.String:
    """The whole value matches ``pattern`` (marshmallow's ``Regexp`` matches a prefix, hence ``\\Z``)."""
    return mf.String(validate=validate.Regexp(rf"(?:{pattern})\Z", error=rule))


def text() -> mf.String:
    """Any text: names, URLs and PEM blocks whose checks belong to the code that parses them."""
    return mf.String()


def secret_name() -> mf.String:
    """The name of a Secrets Manager secret, or empty (not used).

    A name, never an ARN: the IAM policies grant ``secret:<name>-??????`` (``appsync/policies.py``).
    """
    return matching(r"(?:(?!arn:)[A-Za-z0-9/_+=.@-]{1,512})?",
                    "a Secrets Manager secret name such as jucr/prod/mongodb-uri (not an ARN)")


def setting(env: str, default: str | None, rule: mf.Field | None = None, *, secret: bool = False) -> Any:
    """A section field: its variable, default (text, as an operator writes it; ``None`` = required) and rule."""
    return field(metadata={"env": env, "default": default, "rule": rule or text(), "secret": secret})


# --- sections --------------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    """One environment variable as a section declares it."""

    section: str
    attribute: str
    env: str
    default: str | None
    secret: bool


@dataclass(frozen=True)
class Section:
    """Base of every section: ``name`` is its key where all sections are shown together."""

    name: ClassVar[str] = ""

    def redacted(self) -> dict[str, str]:
        """Values safe to print: a set secret is ``***``."""
        return {f.name: "***" if f.metadata["secret"] and getattr(self, f.name) else str(getattr(self, f.name))
                for f in fields(self)}


SectionT = TypeVar("SectionT", bound=Section)


def variables(cls: type[Section]) -> tuple[Variable, ...]:
    return tuple(Variable(cls.name, f.name, f.metadata["env"], f.metadata["default"], f.metadata["secret"])
                 for f in fields(cls))


@cache
def _schema(cls: type[Section]) -> Schema:
    return Schema.from_dict({f.name: f.metadata["rule"] for f in fields(cls)}, name=f"{cls.__name__}Schema")()


def load_section(cls: type[SectionT], environ: Mapping[str, str] | None = None) -> SectionT:
    """``cls`` from ``environ`` (default ``os.environ``); :class:`ConfigError` names every bad variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    problems: list[str] = []
    for f in fields(cls):
        value = env.get(f.metadata["env"], f.metadata["default"])
        if value is None:
            problems.append(f"{f.metadata['env']} is required")
        else:
            raw[f.name] = value
    loaded: dict[str, Any] = {}
    try:
        loaded = _schema(cls).load(raw)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        for f in fields(cls):
            if f.name in messages:
                shown = "***" if f.metadata["secret"] else repr(raw[f.name])
                rules = messages[f.name]
                rule = " and ".join(rules) if isinstance(rules, list) else str(rules)
                problems.append(f"{f.metadata['env']}={shown} is invalid: expected {rule}")
    if problems:
        raise ConfigError("; ".join(problems))
    return cls(**loaded)


_lock = threading.Lock()
_loaded: dict[type, Section] = {}


def get_section(cls: type[SectionT]) -> SectionT:
    """``cls`` for this process, read on first use (never at import time) and then kept."""
    with _lock:
        found = _loaded.get(cls)
        if found is None:
            found = _loaded[cls] = load_section(cls)
        return found  # type: ignore[return-value]


def reset_settings_cache() -> None:
    """Forget loaded sections (tests change the environment between cases)."""
    with _lock:
        _loaded.clear()


@dataclass(frozen=True)
class CoreSettings(Section):
    """What every Lambda needs: where it runs, what its resources are called, whose events it trusts."""

    name: ClassVar[str] = "core"

    stage: str = setting("JUCR_STAGE", "local", one_of("local", "dev", "prod", "test"))
    app_name: str = setting("JUCR_APP_NAME", "jucr")
    aws_region: str = setting("AWS_DEFAULT_REGION", "eu-central-1")
    aws_endpoint_url: str = setting("AWS_ENDPOINT_URL", "")
    event_bus_name: str = setting("EVENT_BUS_NAME", "jucr-local")
    # The Session Service's bus Source: the only one billing trusts for SESSION_ENDED (rules, consumer, bus
    # policy). EventBridge's own rule for a Source; "aws." is reserved for AWS services, so no producer of ours.
    session_event_source: str = setting(
        "SESSION_EVENT_SOURCE", "jucr.session",
        matching(r"(?!aws\.)[A-Za-z0-9._\-/]{1,256}",
                 "an EventBridge source: 1-256 of A-Z a-z 0-9 . _ - /, not starting with 'aws.'"))
    # Validated here; Powertools' Logger (observability/logs.py) reads LOG_LEVEL itself at import and
    # upper-cases it, so any case is accepted. POWERTOOLS_LOG_LEVEL or Lambda's own level win over it.
    log_level: str = setting("LOG_LEVEL", "INFO", matching(r"(?i:DEBUG|INFO|WARNING|ERROR|CRITICAL)",
                                                           "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"))

    def queue_name(self, short: str) -> str:
        """Full queue name: app, stage and the short name the CLI accepts."""
        return resource_name(self.app_name, self.stage, short)

    @property
    def prefix(self) -> str:
        return stage_prefix(self.app_name, self.stage)

    def resource_name(self, name: str) -> str:
        """This stage's name for a function, rule, topic or alarm (``<app>-<stage>-<name>``)."""
        return resource_name(self.app_name, self.stage, name)


_SCHEDULE = r"off|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)"
_SCHEDULE_RULE = "'off', 'rate(N minutes|hours|days)' or 'cron(...)'"


@dataclass(frozen=True)
class ScheduleSettings(Section):
    """The OCM schedules: Chalice reads them when ``app.py`` is imported (and the sync alarm at deploy)."""

    name: ClassVar[str] = "schedule"

    ocm_sync_schedule: str = setting("OCM_SYNC_SCHEDULE", "rate(6 hours)", matching(_SCHEDULE, _SCHEDULE_RULE))
    ocm_full_sweep_schedule: str = setting("OCM_FULL_SWEEP_SCHEDULE", "rate(1 day)",
                                           matching(_SCHEDULE, _SCHEDULE_RULE))


@dataclass(frozen=True)
class AlarmSettings(Section):
    """Alarm thresholds: only the deploy step reads them (``appsync/alarms.py``), no Lambda does."""

    name: ClassVar[str] = "alarm"

    # Alarm when the oldest message of a dead-letter queue is older than this.
    dlq_age_alarm_seconds: int = setting("DLQ_AGE_ALARM_SECONDS", "3600", integer(60, 1209600))
    # Alarm when a consumer Lambda's Errors/Invocations exceeds this percentage over 5 minutes.
    alarm_error_rate_percent: int = setting("ALARM_ERROR_RATE_PERCENT", "5", integer(1, 100))
    # p99 of SESSION_ENDED-to-billed latency above this raises billing-latency-p99.
    billing_latency_slo_ms: int = setting("BILLING_LATENCY_SLO_MS", "5000", integer(100, 600000))
