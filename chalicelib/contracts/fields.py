"""Strict marshmallow fields shared by every contract."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError, fields

MONEY_PATTERN = re.compile(r"-?\d+(\.\d{1,2})?")


class JsonDecimal(fields.Field):
    """A JSON number (or numeric string) as ``Decimal``, via ``str`` so 22.4 stays 22.4.

    Booleans, NaN and infinities are refused: JSON has none of them as numbers.
    """

    def __init__(self, *, minimum: Decimal | None = None, maximum: Decimal | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Not a valid number.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("Not a valid number.") from None
        if not number.is_finite():
            raise ValidationError("Not a finite number.")
        if self.minimum is not None and number < self.minimum:
            raise ValidationError(f"Must be greater than or equal to {self.minimum}.")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"Must be less than or equal to {self.maximum}.")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class Money(fields.Field):
    """Money as a decimal string with at most two fraction digits ("12.34")."""

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        if not isinstance(value, str) or not MONEY_PATTERN.fullmatch(value):
            raise ValidationError("Must be a decimal string such as \"12.34\".")
        return Decimal(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value):.2f}"


class StrictInteger(fields.Integer):
    """An integer that refuses 1.5, "3" and true."""

    def __init__(self, **kwargs) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class UtcDateTime(fields.DateTime):
    """ISO-8601 with an explicit offset; stored and emitted as UTC with ``Z``."""

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        if not isinstance(value, str):
            raise ValidationError("Not a valid datetime.")
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            raise ValidationError("Datetime must carry a timezone, e.g. 2026-02-21T14:31:00Z.")
        return result.astimezone(dt.UTC)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if isinstance(value, str):  # already ISO text (e.g. copied from an incoming event)
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return iso_utc(value)


def iso_utc(value: dt.datetime) -> str:
    """``2026-02-21T14:31:00Z`` (microseconds kept only when present)."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class UuidString(fields.String):
    """A UUID kept as its canonical lower-case string."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        import uuid

        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValidationError("Not a valid UUID.") from None
