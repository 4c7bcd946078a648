"""Errors give nothing away: no client-facing error or log line repeats an input value.

A bad request is answered to whoever sent it and logged where operators read,
so a password, token or email typed into the wrong field must never come back.
Every public operation gets bad input carrying a marker; the marker must appear
in no response and no log line. The unit tests pin the two mappings that make
it so: marshmallow's messages (``ValidationError.from_messages``) and
graphql-core's (``devstack.graphql_errors.public_message``).
"""

from __future__ import annotations

import json
import uuid

import pytest
from graphql import parse, validate
from marshmallow import RAISE, Schema, fields

from chalicelib.auth.service import login
from chalicelib.contracts.errors import ValidationError
from chalicelib.contracts.inputs import LoginInput, RegisterInput
from devstack.gateway import load_schema
from devstack.graphql_errors import public_message

# Fixed, not random: pytest-xdist workers must collect the same parametrized test ids.
MARKER = "MARKER-7f3a9c-0d15ea5e"
SECRET = f"{MARKER}-secret-pass"
ODD_NUMBERS = ("7319.731", "-73197319")  # out-of-range numbers that must not be repeated either

TOKENS = "{ accessToken refreshToken expiresIn }"
REGISTER = f"mutation R($input: RegisterInput!) {{ register(input: $input) {TOKENS} }}"
LOGIN = f"mutation L($input: LoginInput!) {{ login(input: $input) {TOKENS} }}"
REFRESH = f"mutation F($token: String!) {{ refreshToken(token: $token) {TOKENS} }}"
ME = "query { me { id email } }"
INVOICE = "query I($id: ID!) { invoice(id: $id) { id } }"
INVOICES = "query P($first: Int, $after: String) { invoices(first: $first, after: $after) { nextToken } }"
NEAR = ("query N($lat: Float!, $lon: Float!, $r: Float!, $first: Int) "
        "{ stationsNear(lat: $lat, lon: $lon, radiusKm: $r, first: $first) { ocmId } }")
STATION = "query S($id: Int!) { station(ocmId: $id) { ocmId } }"


def _payload(**change) -> dict:
    base = {"email": f"sec.{uuid.uuid4().hex[:10]}@example.com", "name": "Dana Driver",
            "password": "correct horse battery", "vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 58}}
    return {**base, **change}


# --- unit: the mappings -------------------------------------------------------------------


class _Nested(Schema):
    class Meta:
        unknown = RAISE

    count = fields.Integer(strict=True, required=True)


class _Outer(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    inner = fields.Nested(_Nested, required=True)


def _refusal(schema: Schema, data: dict) -> ValidationError:
    from marshmallow import ValidationError as MarshmallowError

    with pytest.raises(MarshmallowError) as caught:
        schema.load(data)
    return ValidationError.from_messages(caught.value.messages)


def _text(error: ValidationError) -> str:
    return error.message + json.dumps(error.details)


def test_unknown_fields_are_named_by_rule_not_by_the_senders_key_or_value():
    error = _refusal(_Outer(), {"name": "n", "inner": {"count": 1, MARKER: SECRET}, f"{MARKER}x": SECRET})
    assert MARKER not in _text(error)
    assert error.details == {"_unknown": "Unknown field.", "inner._unknown": "Unknown field."}


def test_wrong_types_name_the_field_and_rule_not_the_value():
    error = _refusal(_Outer(), {"name": [SECRET], "inner": {"count": SECRET}})
    assert MARKER not in _text(error)
    assert error.details == {"name": "Not a valid string.", "inner.count": "Not a valid integer."}


def test_auth_contracts_refuse_without_repeating_the_password_or_email():
    for schema, data in ((LoginInput, {"email": f"{MARKER}@@x", "password": SECRET, "admin": True}),
                         (RegisterInput, _payload(email=[MARKER], password=SECRET[:5], vehicle=SECRET))):
        error = _refusal(schema(), data)
        assert MARKER not in _text(error) and SECRET[:5] not in _text(error)
        assert "email" in error.details


def test_login_refusal_through_the_service_repeats_no_value():
    with pytest.raises(ValidationError) as caught:
        login(None, {"email": f"{MARKER}@example.com", "password": SECRET, MARKER: SECRET})
    assert MARKER not in _text(caught.value) and "_unknown" in caught.value.details


@pytest.mark.parametrize("query", [
    f'mutation {{ login(input: {{email: "{MARKER}", password: 5}}) {{ accessToken }} }}',
    f'mutation {{ login(input: {{email: "a@b.c", password: "{SECRET}", {MARKER.replace("-", "_")}: 1}}) '
    f'{{ accessToken }} }}',
    f'query {{ station(ocmId: "{MARKER}") {{ ocmId }} }}',
    f'mutation {{ login(input: {{email: "{MARKER}"}}) {{ accessToken }} }}',
])
def test_graphql_literal_errors_name_the_rule_not_the_value(query):
    problems = validate(load_schema(), parse(query))
    assert problems and all(MARKER.split("-")[0] not in public_message(p) for p in problems)


# --- end to end: every public operation, like a client ------------------------------------


def _bad_requests(token: str) -> list[tuple[str, dict, str | None]]:
    """(query, variables, token): each breaks one rule, with a marker in the bad part."""
    literal = f'mutation {{ login(input: {{email: "{MARKER}@example.com", password: {SECRET!r}, x: 1}}) {TOKENS} }}'
    return [
        (LOGIN, {"input": {"email": "a@example.com", "password": SECRET, MARKER: SECRET}}, None),
        (LOGIN, {"input": {"email": [MARKER], "password": SECRET}}, None),
        (LOGIN, {"input": {"email": f"{MARKER}@@example", "password": SECRET}}, None),
        (LOGIN, {"input": {"email": f"{MARKER}@example.com", "password": SECRET}}, None),
        (LOGIN, {"input": SECRET}, None),
        (literal, {}, None),
        (f'mutation {{ login(input: {{password: "{SECRET}}}) {TOKENS} }}', {}, None),
        (REGISTER, {"input": _payload(email=MARKER, password=SECRET)}, None),
        (REGISTER, {"input": _payload(name=f"{MARKER}\x07", password=SECRET)}, None),
        (REGISTER, {"input": _payload(password=MARKER[:6])}, None),
        (REGISTER, {"input": _payload(password=SECRET, vehicle={"brand": "VW", "model": "ID.3",
                                                                "batteryCapacity": MARKER})}, None),
        (REGISTER, {"input": _payload(password=SECRET, vehicle={"brand": "VW", "model": "ID.3",
                                                                "batteryCapacity": 9999, MARKER: 1})}, None),
        (REFRESH, {"token": SECRET}, None),
        (REFRESH, {"token": SECRET * 40}, None),
        (REFRESH, {"token": [SECRET]}, None),
        (ME, {}, f"Bearer {SECRET}"),
        (INVOICE, {"id": SECRET}, token),
        (INVOICES, {"first": 5, "after": SECRET}, token),
        (INVOICES, {"first": SECRET}, token),
        (NEAR, {"lat": float(ODD_NUMBERS[0]), "lon": float(ODD_NUMBERS[1]), "r": -1.0, "first": 0}, token),
        (NEAR, {"lat": SECRET, "lon": 1.0, "r": 1.0}, token),
        (STATION, {"id": SECRET}, token),
        (STATION, {"id": int(ODD_NUMBERS[1])}, token),
    ]


def test_no_response_or_log_line_repeats_a_marked_input(local_stack):
    taken = _payload()
    status, body = local_stack.graphql(REGISTER, {"input": taken})
    assert status == 200 and "errors" not in body, body
    token = body["data"]["register"]["accessToken"]
    cases = [*_bad_requests(token),
             (REGISTER, {"input": {**taken, "password": SECRET}}, None)]  # the email is taken: Conflict

    leaks = []
    for query, variables, auth in cases:
        status, body = local_stack.graphql(query, variables, auth)
        text = json.dumps(body)
        assert status in (200, 400, 401) and '"errors"' in text, (query, variables, body)
        if MARKER in text or any(number in text for number in ODD_NUMBERS):
            leaks.append((query, variables, body))
    assert leaks == []
    leaked_lines = [line for line in local_stack.logs().splitlines() if MARKER in line]
    assert leaked_lines == []
