"""Errors that cross a boundary (GraphQL, events, CLI) with a stable type name.

AppSync direct Lambda resolvers report an exception's class name as the
GraphQL ``errorType``, so the class names here *are* the public error types.
"""

from __future__ import annotations

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
    """Input broke a contract; ``details`` maps field paths to messages."""

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


class AccountLocked(ApiError):
    """Too many failed sign-ins; try again later."""


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """Turn marshmallow's nested message dict into ``{"vehicle.brand": "..."}``."""
    out: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = " ".join(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(flatten_messages(value, f"{prefix}[{index}]"))
    else:
        out[prefix or "_schema"] = str(messages)
    return out
