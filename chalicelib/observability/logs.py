"""One Powertools ``Logger`` for the app, with a formatter that drops PII.

Callers log structured keys (``logger.info("billed", extra={"sessionId": ...})``);
the formatter removes personal data and secrets by key name anywhere in the
record, even when a caller passes them by mistake, and masks anything that looks
like an email or a JWT inside free text.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Key names (compared lower-case, without "_" or "-") that never reach a log.
PII_KEYS = frozenset(
    {
        "email", "name", "firstname", "lastname", "fullname", "password", "newpassword",
        "passwordhash", "hash", "token", "accesstoken", "refreshtoken", "authorization",
        "authorizationtoken", "idtoken", "secret", "apikey", "xapikey", "ocmapikey",
        "privatekey", "jwtprivatekey", "vehicle", "brand", "model", "batterycapacity",
        "phone", "address", "iban", "card", "cardnumber", "cvc", "paymentdetails",
        "mongodburi", "cookie",
    }
)
REDACTED = "[REDACTED]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_URI_CREDENTIALS = re.compile(r"(mongodb(\+srv)?://)[^@/\s]+@")


# Fragments that mark a key as personal or secret wherever they appear in it
# (userEmail, displayName, sessionToken, secretAccessKey, ...).
PII_FRAGMENTS = ("email", "password", "token", "secret", "apikey", "privatekey", "name", "vehicle", "iban")
# Keys that contain a fragment but are structured metadata we need in logs.
SAFE_KEYS = frozenset({"eventname", "functionname", "queuename", "metricname", "rulename", "busname",
                       "tokenversion", "stationname", "operatorname", "filename", "fieldname", "typename"})


def _is_pii_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    normalised = key.lower().replace("_", "").replace("-", "")
    if normalised in PII_KEYS:
        return True
    return normalised not in SAFE_KEYS and any(fragment in normalised for fragment in PII_FRAGMENTS)


def scrub(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with PII keys removed and PII-looking text masked."""
    if depth > 8:
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, depth + 1) for k, v in value.items() if not _is_pii_key(k)}
    if isinstance(value, (list, tuple)):
        return [scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        value = _EMAIL.sub(REDACTED, value)
        value = _JWT.sub(REDACTED, value)
        return _URI_CREDENTIALS.sub(r"\1" + REDACTED + "@", value)
    return value


class PiiSafeFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, scrubbing each record before it is written."""

    def serialize(self, log: dict) -> str:
        return super().serialize(scrub(log))


logger = Logger(service="jucr", logger_formatter=PiiSafeFormatter(), use_rfc3339=True)
