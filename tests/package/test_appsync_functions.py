"""The authorizer and the three resolvers from the package, with AppSync's request shapes."""

from __future__ import annotations

import json
import uuid

import pytest

from devstack.lambdas import FunctionError
from tests.package.conftest import (
    authorizer_event,
    bus_event,
    log_of,
    resolver_event,
    session_ended,
    user_registered,
)

pytestmark = pytest.mark.xdist_group("package")


def _register(functions) -> dict:
    email = f"pkg-{uuid.uuid4().hex[:8]}@example.com"
    return functions.invoke("auth_resolver", resolver_event("Mutation", "register", {"input": {
        "email": email, "name": "Package Suite", "password": "correct horse battery staple",
        "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}}))


def test_register_then_authorize_then_me(functions, stage, store):
    stage.published()
    payload = _register(functions)
    user_id = payload["user"]["id"]
    assert payload["accessToken"] and payload["refreshToken"] and payload["expiresIn"] > 0
    assert store.users.count_documents({"_id": user_id}) == 1
    assert [(e["detail-type"], e["detail"]["userId"]) for e in stage.published()] == [("USER_REGISTERED", user_id)]
    records = [line for line in log_of(functions, "auth_resolver").splitlines() if "user registered" in line]
    assert records and all(json.loads(line)["service"] == "jucr" for line in records), (
        "each log record is one JSON line, written once (through the PII-scrubbing formatter)")

    verdict = functions.invoke("authorizer", authorizer_event(payload["accessToken"]))
    assert verdict["isAuthorized"] is True
    assert verdict["resolverContext"]["userId"] == user_id
    refused = functions.invoke("authorizer", authorizer_event(payload["accessToken"][:-4] + "AAAA"))
    assert refused["isAuthorized"] is False
    assert functions.invoke("authorizer", authorizer_event("not a token"))["isAuthorized"] is False

    me = functions.invoke("auth_resolver", resolver_event("Query", "me", resolver_context=verdict["resolverContext"]))
    assert me["id"] == user_id and me["email"] == payload["user"]["email"]


def test_a_resolver_error_reaches_appsync_with_its_public_error_type(functions):
    with pytest.raises(FunctionError) as raised:
        functions.invoke("auth_resolver", resolver_event("Mutation", "register", {"input": {"email": "nope"}}))
    assert raised.value.error_type == "ValidationError"
    with pytest.raises(FunctionError) as anonymous:
        functions.invoke("billing_resolver", resolver_event("Query", "wallet"))
    assert anonymous.value.error_type == "Unauthorized"


def test_billing_resolver_serves_the_callers_wallet_and_invoices(functions, stage):
    user_id = str(uuid.uuid4())
    assert stage.deliver(functions.emulator("wallet_opener"), stage.sqs_event("wallets", [bus_event(
        user_registered(user_id), source="jucr.auth")])) == {"batchItemFailures": []}
    assert stage.deliver(functions.emulator("billing_consumer"), stage.sqs_event("billing", [bus_event(
        session_ended(user_id))])) == {"batchItemFailures": []}
    caller = {"userId": user_id}

    wallet = functions.invoke("billing_resolver", resolver_event("Query", "wallet", resolver_context=caller))
    assert wallet == {**wallet, "balance": "39.60", "currency": "EUR"}
    page = functions.invoke("billing_resolver", resolver_event("Query", "invoices", {"first": 5}, caller))
    assert [(i["total"], i["status"]) for i in page["items"]] == [("10.40", "PAID")]
    one = functions.invoke("billing_resolver", resolver_event("Query", "invoice", {"id": page["items"][0]["id"]},
                                                              caller))
    assert (one["net"], one["vat"], one["total"]) == ("8.74", "1.66", "10.40")
    stranger = {"userId": str(uuid.uuid4())}
    with pytest.raises(FunctionError) as hidden:
        functions.invoke("billing_resolver", resolver_event("Query", "invoice", {"id": one["id"]}, stranger))
    assert hidden.value.error_type == "NotFound"


def test_stations_resolver_finds_synced_stations(functions, stage, synced):
    record = stage.standin.record(stage.standin.ids()[0])
    lat, lon = record["AddressInfo"]["Latitude"], record["AddressInfo"]["Longitude"]
    near = functions.invoke("stations_resolver", resolver_event(
        "Query", "stationsNear", {"lat": lat, "lon": lon, "radiusKm": 1.0, "first": 5}, {"userId": "u"}))
    assert near and near[0]["ocmId"] == record["ID"] and near[0]["distanceKm"] < 0.01
    assert near[0]["attribution"]["license"]
    one = functions.invoke("stations_resolver", resolver_event("Query", "station", {"ocmId": record["ID"]},
                                                               {"userId": "u"}))
    assert one["ocmId"] == record["ID"] and one["title"] == record["AddressInfo"]["Title"]


def test_concurrent_calls_to_one_function_take_turns(functions, closed_port_url):
    """One emulator is one instance: it crashes on a second concurrent invocation, so callers queue."""
    import threading

    slow = functions.emulator("billing_resolver", MONGODB_URI=f"mongodb://{closed_port_url[7:]}/",
                              MONGODB_TIMEOUT_MS="500")
    errors: list[str] = []

    def call() -> None:
        try:
            slow.invoke(resolver_event("Query", "wallet", resolver_context={"userId": str(uuid.uuid4())}))
        except FunctionError as exc:
            errors.append(exc.error_type)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == ["TransientStoreError"] * 3 and slow.process.poll() is None
