"""Validate one OCM record against a declarative field table, in plain Python.

Every other input of the code base goes through marshmallow; OCM records do not,
for speed alone. A POI holds 40-80 values and marshmallow spent ~160 µs on one:
18 s of a 100,000-record first sync, a third of its time budget. These checks
apply the same rules (types, ranges, required fields, defaults, no NaN, no (0, 0))
in ~15 µs and name failing fields the way the rest of the code does
(``AddressInfo.Latitude``, ``Connections.0.PowerKW``), never echoing their values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.timestamps import parse_utc

INT, FLOAT, STR, DICT, DATETIME, OBJECT, OBJECTS, DICTS = (
    "int", "float", "str", "dict", "datetime", "object", "objects", "dicts")


@dataclass(frozen=True)
class Field:
    kind: str
    required: bool = False  # required fields may not be null either
    low: float | None = None
    high: float | None = None
    nested: dict[str, Field] | None = None  # the table of an OBJECT or of each item of OBJECTS
    default: Callable[[], Any] | None = None  # value when absent; None otherwise
    check: Callable[[dict[str, Any]], dict[str, str]] | None = None  # whole-object rule of an OBJECT


def _not_null_island(address: dict[str, Any]) -> dict[str, str]:
    # Published data holds no (0, 0) points; unpublished test records do.
    if address.get("Latitude") == 0 and address.get("Longitude") == 0:
        return {"Latitude": "(0, 0) is not a real charging location"}
    return {}


CONNECTION = {
    "ConnectionTypeID": Field(INT), "ConnectionType": Field(DICT), "StatusTypeID": Field(INT),
    "LevelID": Field(INT), "CurrentTypeID": Field(INT), "PowerKW": Field(FLOAT, low=0, high=5000),
    "Quantity": Field(INT, low=0, high=10000),
}
ADDRESS = {
    **{name: Field(STR) for name in ("Title", "AddressLine1", "AddressLine2", "Town", "StateOrProvince",
                                     "Postcode")},
    "CountryID": Field(INT), "Country": Field(DICT),
    "Latitude": Field(FLOAT, required=True, low=-90, high=90),
    "Longitude": Field(FLOAT, required=True, low=-180, high=180),
}
POI = {
    "ID": Field(INT, required=True, low=1), "UUID": Field(STR),
    "DataProviderID": Field(INT), "DataProvider": Field(DICT), "OperatorID": Field(INT), "OperatorInfo": Field(DICT),
    "StatusTypeID": Field(INT), "StatusType": Field(DICT), "UsageTypeID": Field(INT),
    "NumberOfPoints": Field(INT, low=0, high=100000),
    "DateLastStatusUpdate": Field(DATETIME), "DateCreated": Field(DATETIME),
    "AddressInfo": Field(OBJECT, required=True, nested=ADDRESS, check=_not_null_island),
    "Connections": Field(OBJECTS, nested=CONNECTION, default=list),
    "MetadataValues": Field(DICTS),
}


class Invalid(ValueError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("invalid record")
        self.problems = problems


def load(record: dict[str, Any]) -> dict[str, Any]:
    """The record's known fields, converted (floats as float, dates as aware datetimes); raise ``Invalid``."""
    problems: dict[str, str] = {}
    loaded = _object(record, POI, "", problems)
    if problems:
        raise Invalid(problems)
    return loaded


def _object(value: dict[str, Any], table: dict[str, Field], path: str, problems: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in table.items():
        raw = value.get(name)
        if raw is None:
            if field.required:
                problems[path + name] = ("Field may not be null." if name in value
                                         else "Missing data for required field.")
            out[name] = field.default() if field.default and name not in value else None
            continue
        out[name] = _CONVERT[field.kind](raw, field, path + name, problems)
    return out


def _range(number: float, field: Field, path: str, problems: dict[str, str]) -> None:
    if (field.low is not None and number < field.low) or (field.high is not None and number > field.high):
        bounds = [f"greater than or equal to {field.low}" if field.low is not None else "",
                  f"less than or equal to {field.high}" if field.high is not None else ""]
        problems[path] = "Must be " + " and ".join(b for b in bounds if b) + "."


def _int(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    if type(raw) is not int:  # bool is an int to Python, not to a record
        problems[path] = "Not a valid integer."
        return None
    _range(raw, field, path, problems)
    return raw


def _float(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    try:
        number = float(raw) if type(raw) in (int, float, str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        problems[path] = "Not a valid number (special values such as NaN and infinity are refused)."
        return None
    _range(number, field, path, problems)
    return number


def _str(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    if not isinstance(raw, str):
        problems[path] = "Not a valid string."
        return None
    return raw


def _dict(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    if not isinstance(raw, dict):
        problems[path] = "Not a valid mapping type."
        return None
    return dict(raw)


def _datetime(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    parsed = parse_utc(raw)
    if parsed is None:
        problems[path] = "Not a valid datetime."
    return parsed


def _nested(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    if not isinstance(raw, dict):
        problems[f"{path}._schema"] = "Invalid input type."  # where marshmallow reports it, as elsewhere
        return None
    loaded = _object(raw, field.nested or {}, path + ".", problems)
    if field.check:
        problems.update({f"{path}.{name}": message for name, message in field.check(loaded).items()})
    return loaded


def _list(raw: Any, field: Field, path: str, problems: dict[str, str]) -> Any:
    if not isinstance(raw, list):
        problems[path] = "Not a valid list."
        return None
    convert = _nested if field.kind == OBJECTS else _dict
    items = []
    for index, item in enumerate(raw):
        if item is None:
            problems[f"{path}.{index}"] = "Field may not be null."
        items.append(None if item is None else convert(item, field, f"{path}.{index}", problems))
    return items


_CONVERT: dict[str, Callable[[Any, Field, str, dict[str, str]], Any]] = {
    INT: _int, FLOAT: _float, STR: _str, DICT: _dict, DATETIME: _datetime, OBJECT: _nested, OBJECTS: _list,
    DICTS: _list,
}
