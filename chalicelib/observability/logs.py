r"""One Powertools ``Logger`` for the app, with a formatter that drops PII.

Callers log structured keys (``logger.info("billed", extra={"sessionId": ...})``);
the formatter removes personal data and secrets by key name anywhere in the
record, even when a caller passes them by mistake, and masks anything that looks
like an email or a JWT inside free text (messages, extra values, dict keys,
exception text and stack traces alike).

Free text is masked in a fixed order. URI credentials go first: a password may
itself hold ``@`` (``mongodb://user:p@ss@host/``), and an email pattern run first
would cut the URI at the wrong ``@`` and leave part of the password. Then anything
shaped like an email, ``\S+@\S+``, deliberately broad: registration accepts
addresses such as ``victim@localhost``, ``user@[10.0.0.1]`` and ``o'brien@...``
(valid, so not refused there), and a narrower pattern let them through. Masking a
non-email token that happens to hold ``@`` costs a little log detail; missing an
address is a leak.
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
# Any scheme's userinfo up to the LAST "@" of the authority (greedy), so an "@" in the password is covered.
# The scheme's length is bounded so a long dotted token costs linear time, not quadratic.
_URI_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)[^\s/?#]*@")
# ``\S+@\S+`` masks a whole whitespace-delimited token; matched token by token, which is the
# same result in linear time (the plain regex backtracks quadratically on a long token ending in "@").
_TOKEN = re.compile(r"\S{3,}")
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
# Stands for masked credentials while the email pass runs: holds no "@", so the URI's host stays readable.
# NUL cannot come from the caller: it is removed from the text first.
_CREDENTIALS_MARK = "\x00credentials\x00"


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


def _mask_email_shaped(match: re.Match[str]) -> str:
    inner = match.group()[1:-1]  # "@" with at least one character either side; "%40" if URL-encoded
    return REDACTED if "@" in inner or "%40" in inner.lower() else match.group()


def scrub_text(text: str) -> str:
    """``text`` with URI credentials, then email-shaped tokens, then JWTs masked (order: see module doc)."""
    text = text.replace("\x00", "")
    text = _URI_CREDENTIALS.sub(lambda m: m.group(1) + _CREDENTIALS_MARK, text)
    text = _TOKEN.sub(_mask_email_shaped, text)
    text = _JWT.sub(REDACTED, text)
    return text.replace(_CREDENTIALS_MARK, REDACTED + "@")


def scrub(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with PII keys removed and PII-looking text masked.

    Values that are not JSON types (an exception passed as ``extra``, a ``bytes``)
    are turned into text here and masked, rather than left to the serializer's
    ``str()`` after scrubbing, which would write them out unmasked.
    """
    if depth > 8:
        return REDACTED
    if isinstance(value, dict):
        return {scrub_text(k) if isinstance(k, str) else k: scrub(v, depth + 1)
                for k, v in value.items() if not _is_pii_key(k)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))


class PiiSafeFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, scrubbing each record before it is written."""

    def serialize(self, log: dict) -> str:
        return super().serialize(scrub(log))


logger = Logger(service="jucr", logger_formatter=PiiSafeFormatter(), use_rfc3339=True)
