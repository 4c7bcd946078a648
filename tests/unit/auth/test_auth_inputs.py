"""RegisterInput / LoginInput: each rule refuses with a ValidationError naming the field."""

from __future__ import annotations

import pytest

from chalicelib.auth import service
from chalicelib.contracts.errors import ValidationError


def _details(deps, payload) -> dict:
    with pytest.raises(ValidationError) as caught:
        service.register(deps, payload)
    return caught.value.details


def test_email_is_trimmed_and_lower_cased(deps, seed):
    out = service.register(deps, seed(email="  Driver@Example.COM "))
    assert out["user"]["email"] == "driver@example.com"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": 42}, "email"),
        ({"email": "a" * 250 + "@x.de"}, "email"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"password": "short1234"}, "password"),
        ({"password": None}, "password"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 0}}, "vehicle.batteryCapacity"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 501}}, "vehicle.batteryCapacity"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": True}}, "vehicle.batteryCapacity"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": "NaN"}}, "vehicle.batteryCapacity"),
        ({"vehicle": {"brand": "", "model": "ID.3", "batteryCapacity": 58}}, "vehicle.brand"),
        ({"vehicle": {"brand": "VW", "batteryCapacity": 58}}, "vehicle.model"),
        ({"vehicle": {"brand": "VW", "model": "ID.3", "batteryCapacity": 58, "vin": "x"}}, "vehicle._unknown"),
        ({"vehicle": "VW ID.3"}, "vehicle._schema"),
        ({"isAdmin": True}, "_unknown"),  # an unknown key is the sender's text: not repeated
    ],
)
def test_bad_field_is_named_and_nothing_is_written(deps, repo, publisher, seed, override, field):
    details = _details(deps, seed(**override))
    assert field in details
    assert repo.users == {} and publisher.published == []


def test_missing_fields_are_each_named(deps):
    details = _details(deps, {})
    assert {"email", "name", "password", "vehicle"} <= set(details)


def test_non_object_input_is_a_validation_error(deps):
    for payload in (None, [], "x", 3):
        with pytest.raises(ValidationError):
            service.register(deps, payload)


def test_name_keeps_unicode_letters(deps, seed):
    out = service.register(deps, seed(name="Zoë Ångström-Łukasz"))
    assert out["user"]["name"] == "Zoë Ångström-Łukasz"


def test_password_message_names_field_but_not_value(deps, seed):
    with pytest.raises(ValidationError) as caught:
        service.register(deps, seed(password="tooshort"))
    assert "password" in caught.value.message and "tooshort" not in caught.value.message


def test_login_input_refuses_unknown_keys_and_bad_email(deps):
    with pytest.raises(ValidationError) as caught:
        service.login(deps, {"email": "x@example.com", "password": "whatever123", "otp": "1"})
    assert "_unknown" in caught.value.details and "otp" not in caught.value.details
    with pytest.raises(ValidationError) as caught:
        service.login(deps, {"email": "nope", "password": "whatever123"})
    assert "email" in caught.value.details
