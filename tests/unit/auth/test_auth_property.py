"""Property: any JSON into register/login yields a user or a client error, never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.auth import service
from chalicelib.contracts.errors import Unauthorized, ValidationError
from chalicelib.events.publisher import RecordingPublisher

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
field_values = {
    "email": st.emails() | json_values,
    "name": st.text(min_size=1, max_size=120) | json_values,
    "password": st.text(min_size=8, max_size=90) | json_values,
    "vehicle": st.fixed_dictionaries({
        "brand": st.text(max_size=20) | json_values,
        "model": st.text(max_size=20) | json_values,
        "batteryCapacity": st.floats(allow_nan=True, allow_infinity=True) | st.integers() | json_values,
    }) | json_values,
}
shaped = st.fixed_dictionaries({}, optional=field_values)
with_extra_keys = st.builds(lambda a, b: {**a, **b}, shaped, st.dictionaries(st.text(), json_values, max_size=2))
register_inputs = json_values | shaped | with_extra_keys
_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh(deps):
    from dataclasses import replace

    return replace(deps, repo=type(deps.repo)(), publisher=RecordingPublisher(clock=deps.clock))


@_fast
@given(payload=register_inputs)
def test_register_yields_a_user_or_a_validation_error(deps, payload):
    deps = _fresh(deps)
    try:
        out = service.register(deps, payload)
    except ValidationError as exc:
        assert exc.details and not deps.repo.users and not deps.publisher.published
        return
    assert out["user"]["id"] in deps.repo.users
    assert 1 <= len(out["user"]["name"]) <= 100 and out["user"]["email"] == out["user"]["email"].strip().lower()
    assert 1 <= out["user"]["vehicle"]["batteryCapacity"] <= 500
    assert len(deps.publisher.published) == 1


@_fast
@given(payload=json_values | st.fixed_dictionaries({}, optional={"email": field_values["email"],
                                                                  "password": field_values["password"]}))
def test_login_yields_a_validation_error_or_unauthorized(deps, payload):
    deps = _fresh(deps)
    try:
        service.login(deps, payload)
    except (ValidationError, Unauthorized):
        return
    raise AssertionError("login succeeded for an empty user store")
