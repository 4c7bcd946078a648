"""Every settings section together, for what shows or records all of them.

A Lambda loads only its own sections (``bootstrap.settings``). The operator CLI
(``./jucr settings``), the local stack's state file, the deploy step and the tests want
the whole stage instead, and want every bad value at once: :func:`load_stage_settings`
validates all sections and :func:`all_sections` is the redacted view. This module
imports every domain's section, so no Lambda's request path imports it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from chalicelib.auth.settings import AuthorizerSettings, AuthSettings
from chalicelib.billing.settings import BillingSettings
from chalicelib.config import (
    AlarmSettings,
    ConfigError,
    CoreSettings,
    ScheduleSettings,
    Section,
    Variable,
    load_section,
    variables,
)
from chalicelib.dlq.settings import DlqSettings
from chalicelib.events.settings import QueueSettings
from chalicelib.ocm.settings import OcmSettings
from chalicelib.store.settings import StoreSettings


@dataclass(frozen=True)
class StageSettings:
    """One stage's settings, section by section (the attribute is the section's ``name``)."""

    core: CoreSettings
    schedule: ScheduleSettings
    store: StoreSettings
    queue: QueueSettings
    authorizer: AuthorizerSettings
    auth: AuthSettings
    billing: BillingSettings
    ocm: OcmSettings
    dlq: DlqSettings
    alarm: AlarmSettings

    def sections(self) -> Iterator[Section]:
        return (getattr(self, f.name) for f in fields(self))

    def redacted(self) -> dict[str, dict[str, str]]:
        return {section.name: section.redacted() for section in self.sections()}

    def by_variable(self) -> dict[str, Any]:
        """Environment variable -> loaded value, over every section (the deploy step's secret ids)."""
        return {v.env: getattr(section, v.attribute) for section in self.sections() for v in variables(type(section))}


SECTIONS: tuple[type[Section], ...] = tuple(get_type_hints(StageSettings).values())


def all_variables() -> tuple[Variable, ...]:
    """Every variable of every section, in section order."""
    return tuple(v for cls in SECTIONS for v in variables(cls))


def load_stage_settings(environ: Mapping[str, str] | None = None) -> StageSettings:
    """Every section from ``environ`` (default ``os.environ``); one :class:`ConfigError` lists every bad value."""
    env = os.environ if environ is None else environ
    loaded: dict[str, Section] = {}
    problems: list[str] = []
    for cls in SECTIONS:
        try:
            loaded[cls.name] = load_section(cls, env)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))
    return StageSettings(**loaded)


def all_sections(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Section name -> its values, secrets as ``***``: what ``./jucr settings`` prints."""
    return load_stage_settings(environ).redacted()
