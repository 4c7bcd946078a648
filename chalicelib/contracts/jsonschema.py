"""Machine-readable contracts: JSON Schema generated from the marshmallow event schemas.

``python -m chalicelib.contracts.jsonschema`` rewrites ``docs/contracts/``; a
test fails when the files there differ from what the code would generate, so
the published contract cannot drift from the one consumers enforce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from marshmallow import fields, validate

from chalicelib.contracts import fields as ours
from chalicelib.contracts.events import EVENT_SCHEMAS, EVENT_SOURCES

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "contracts"


def _field_schema(field: fields.Field) -> dict[str, Any]:
    out = _base_type(field)
    _apply_validators(out, field.validators)
    if field.allow_none:
        out["type"] = [out["type"], "null"]
    return out


def _base_type(field: fields.Field) -> dict[str, Any]:
    if isinstance(field, ours.Money):
        out: dict[str, Any] = {"type": "string", "pattern": ours.MONEY_PATTERN.pattern}
    elif isinstance(field, ours.JsonDecimal):
        out = {"type": "number"}
        if field.minimum is not None:
            out["minimum"] = float(field.minimum)
        if field.maximum is not None:
            out["maximum"] = float(field.maximum)
    elif isinstance(field, ours.UtcDateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(field, ours.UuidString):
        out = {"type": "string", "format": "uuid"}
    elif isinstance(field, fields.Integer):
        out = {"type": "integer"}
    elif isinstance(field, fields.Boolean):
        out = {"type": "boolean"}
    else:
        out = {"type": "string"}
    return out


def _apply_validators(out: dict[str, Any], validators) -> None:
    for rule in validators:
        if isinstance(rule, validate.Range):
            if rule.min is not None:
                out["minimum"] = rule.min
            if rule.max is not None:
                out["maximum"] = rule.max
        elif isinstance(rule, validate.Length):
            if rule.min is not None:
                out["minLength"] = rule.min
            if rule.max is not None:
                out["maxLength"] = rule.max
        elif isinstance(rule, validate.OneOf):
            out["enum"] = list(rule.choices)
        elif isinstance(rule, validate.Regexp):
            out["pattern"] = rule.regex.pattern


def contract(event_type: str, version: int) -> dict[str, Any]:
    schema = EVENT_SCHEMAS[event_type][version]()
    props = {name: _field_schema(f) for name, f in sorted(schema.fields.items())}
    required = sorted(name for name, f in schema.fields.items() if f.required)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:jucr:event:{event_type}:v{version}",
        "title": f"{event_type} v{version}",
        "description": f"EventBridge Detail of DetailType {event_type} from Source {EVENT_SOURCES[event_type]}. "
                       "Unknown properties are tolerated and dropped by consumers; a missing schemaVersion means 1.",
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": True,
    }


def render_all() -> dict[str, str]:
    out = {}
    for event_type, versions in sorted(EVENT_SCHEMAS.items()):
        for version in sorted(versions):
            out[f"{event_type}.v{version}.json"] = json.dumps(contract(event_type, version), indent=2) + "\n"
    return out


def main() -> int:
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (DOCS_DIR / name).write_text(text)
        print(f"wrote docs/contracts/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
