"""Render AppSync request mapping templates locally with airspeed (a Velocity engine).

The local stack runs the deploy step's templates as text, not a Python copy of
their logic, so what guards a subscription in AWS is what guards it here. Only
the ``$util`` functions our templates use are provided; an unknown one fails
the render loudly instead of passing silently.
"""

from __future__ import annotations

import json
from typing import Any

import airspeed


class Unauthorized(Exception):
    """``$util.unauthorized()``: AppSync stops the request with an Unauthorized error."""


class _Util:
    """The subset of AppSync's ``$util`` that our templates call."""

    def isNull(self, value: Any) -> bool:  # noqa: N802 - AppSync's name
        return value is None

    def isNullOrEmpty(self, value: Any) -> bool:  # noqa: N802 - AppSync's name
        return value is None or value == "" or value == [] or value == {}

    def unauthorized(self) -> None:
        raise Unauthorized("Not Authorized")

    def toJson(self, value: Any) -> str:  # noqa: N802 - AppSync's name
        return json.dumps(value)


def render_request(template: str, arguments: dict[str, Any], identity: dict[str, Any] | None) -> dict[str, Any]:
    """Render ``template`` for a caller; returns the parsed request, raises ``Unauthorized``.

    AppSync parses the rendered text as JSON, so a template that renders to
    something else is an error here too.
    """
    context = {"arguments": arguments, "args": arguments, "identity": identity, "source": None,
               "stash": {}, "prev": None}
    try:
        text = airspeed.Template(template).merge({"context": context, "ctx": context, "util": _Util()})
    except airspeed.TemplateExecutionError as exc:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, Unauthorized):
                raise Unauthorized(str(cause)) from None
            cause = cause.__cause__ or getattr(cause, "__context__", None)
        raise
    return json.loads(text)
