"""Invoice page tokens: whatever a client sends back, a bad token is a ValidationError, never a crash."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from chalicelib.billing.service import decode_cursor, encode_cursor
from chalicelib.contracts.errors import ValidationError


def _token(payload) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_token_round_trips():
    issued = dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)
    assert decode_cursor(encode_cursor({"issuedAt": issued, "_id": "inv-1"})) == (issued, "inv-1")


@pytest.mark.parametrize("token", [
    _token({"t": 10**20, "i": "x"}),       # beyond datetime's range
    _token({"t": -(10**20), "i": "x"}),
    _token('{"t": 1e400, "i": "x"}'),       # json reads inf; int(inf) overflows
    _token({"t": "soon", "i": "x"}),
    _token({"i": "x"}),
    _token([1, 2]),
    "not-a-cursor",
    "%%%",
])
def test_forged_or_broken_tokens_are_validation_errors(token):
    with pytest.raises(ValidationError) as err:
        decode_cursor(token)
    assert err.value.details == {"after": "invalid cursor"}
