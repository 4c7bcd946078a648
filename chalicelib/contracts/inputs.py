"""GraphQL input contracts (marshmallow), checked at the resolver boundary.

AppSync already checks GraphQL types, but a resolver Lambda can be invoked
with any JSON, so every rule is enforced here too: unknown keys are refused
(``unknown = RAISE``), strings are trimmed where whitespace is meaningless, and
each error names its field (``vehicle.batteryCapacity``).
"""

from __future__ import annotations

from decimal import Decimal

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from chalicelib.contracts.fields import JsonDecimal

EMAIL_MAX = 254
PASSWORD_MIN = 10
# Passwords are pre-hashed (SHA-256) before bcrypt, so length is not limited by
# bcrypt's 72 bytes; this cap only keeps request bodies sane.
PASSWORD_MAX = 1024
TEXT_MAX = 100
BATTERY_MIN_KWH = Decimal("1")
BATTERY_MAX_KWH = Decimal("500")


class NormalizedEmail(fields.Email):
    """An email address, trimmed and lower-cased before it is checked, so lookups are case-insensitive."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        if not isinstance(value, str):
            raise ValidationError("Not a valid email address.")
        normalized = value.strip().lower()
        if len(normalized) > EMAIL_MAX:
            raise ValidationError(f"Must be at most {EMAIL_MAX} characters.")
        return super()._deserialize(normalized, attr, data, **kwargs)


class PrintableText(fields.String):
    """Trimmed text of 1..``TEXT_MAX`` printable characters (no control characters or line breaks)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not 1 <= len(text) <= TEXT_MAX:
            raise ValidationError(f"Must be between 1 and {TEXT_MAX} characters.")
        if not text.isprintable():
            raise ValidationError("Must contain printable characters only.")
        return text


class VehicleInput(Schema):
    class Meta:
        unknown = RAISE

    brand = PrintableText(required=True)
    model = PrintableText(required=True)
    batteryCapacity = JsonDecimal(required=True, minimum=BATTERY_MIN_KWH, maximum=BATTERY_MAX_KWH)


class RegisterInput(Schema):
    class Meta:
        unknown = RAISE

    email = NormalizedEmail(required=True)
    name = PrintableText(required=True)
    password = fields.String(required=True, validate=validate.Length(PASSWORD_MIN, PASSWORD_MAX))
    vehicle = fields.Nested(VehicleInput, required=True)


class LoginInput(Schema):
    class Meta:
        unknown = RAISE

    email = NormalizedEmail(required=True)
    password = fields.String(required=True, validate=validate.Length(1, PASSWORD_MAX))


class RefreshTokenInput(Schema):
    class Meta:
        unknown = RAISE

    token = fields.String(required=True, validate=validate.Length(1, 512))
