"""Errors that cross a boundary (GraphQL, events, CLI) with a stable type name.

AppSync direct Lambda resolvers report an exception's class name as the
GraphQL ``errorType``, and the SQS batch runner sends it as a dead letter's
``errorType`` attribute, so the class names here *are* the public error types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """Base for errors a client may see; ``message`` is meant for a person."""

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})

    @property
    def error_type(self) -> str:
        return type(self).__name__


class ValidationError(ApiError):
    """Input broke a contract; ``details`` maps field paths to messages.

    Only field names and rules reach the client, never a value: a message is
    shown to whoever sent the request and logged, and the input may be a password.
    """

    @classmethod
    def from_messages(cls, messages: Mapping[str, Any], prefix: str = "") -> ValidationError:
        flat = flatten_messages(messages, prefix)
        text = "; ".join(f"{path}: {msg}" for path, msg in sorted(flat.items()))
        return cls(f"Invalid input: {text}", details=flat)


class Unauthorized(ApiError):
    """No valid credentials, or the credentials were refused."""


class NotFound(ApiError):
    """The thing does not exist, or the caller may not know it exists."""


class Conflict(ApiError):
    """The request collides with existing state (e.g. the email is taken)."""


class TooManyAttempts(ApiError):
    """Too many failed sign-ins from here: ``retryAfterSeconds`` says when the next is checked (a delay, not a lock)."""


# Why a queue consumer could not handle a message. The batch runner retries a
# TransientError and dead-letters a PermanentError with the class name as the
# ``errorType`` message attribute, which the reconciler classifies on: the names
# below are a contract between the domain that raises and the one that reconciles,
# so a new case gets a new class here rather than a phrase in a message.
class PermanentError(Exception):
    """Retrying can never succeed; the message says why (no PII)."""


class TransientError(Exception):
    """A later attempt may succeed (e.g. a prerequisite not there yet)."""


class WalletNotOpen(TransientError):
    """The user's wallet does not exist yet: USER_REGISTERED may simply not be processed yet (early, not wrong)."""


class SessionReused(PermanentError):
    """The sessionId is already billed for another user or other usage: no retry can fix a re-used id."""


class UntrustedSource(PermanentError):
    """The event's ``source`` is not the publisher the queue trusts: a forgery, never acted on for its ids."""


# marshmallow's text for a key the schema does not declare (``unknown = RAISE``).
UNKNOWN_FIELD = "Unknown field."
UNKNOWN_KEY = "_unknown"
# A key a schema can declare; anything else came from the sender and is not repeated.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """Turn marshmallow's nested message dict into ``{"vehicle.brand": "..."}``.

    An unknown key is the sender's text, as free as a value (a secret pasted in
    the wrong place), so every unknown key of an object becomes one
    ``<path>._unknown`` entry; so does any key that is not a plain field name.
    """
    out: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = key if isinstance(key, int) or _declared(key, value) else UNKNOWN_KEY
            path = f"{prefix}.{name}" if prefix else str(name)
            out.update(flatten_messages(UNKNOWN_FIELD if name == UNKNOWN_KEY else value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = " ".join(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(flatten_messages(value, f"{prefix}[{index}]"))
    else:
        out[prefix or "_schema"] = str(messages)
    return out


def _declared(key: Any, value: Any) -> bool:
    """Whether ``key`` is a field the schema declares (its name is then safe to show)."""
    unknown = value == UNKNOWN_FIELD or value == [UNKNOWN_FIELD]
    return isinstance(key, str) and not unknown and bool(_FIELD_NAME.fullmatch(key))
