"""One whole client journey, then every log line of the stack is searched for personal data.

register -> wallet opened by choreography -> session billed -> invoice read ->
a poison session carrying personal data -> dead letter -> BILLING_FAILED.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_billing_flow import INVOICES, REGISTER, SEED, WALLET, data
from tests.e2e.test_dlq_e2e import decision_for

pytestmark = pytest.mark.e2e


def test_a_full_flow_leaves_no_personal_data_in_any_log(local_stack):
    tag = uuid.uuid4().hex[:10]
    person = {"email": f"flow.{tag}@example.com", "name": f"Flo Flowtest {tag}", "password": f"pw {tag} secret",
              "vehicle": {"brand": f"Marque{tag}", "model": f"Modele{tag}", "batteryCapacity": 64}}
    offset = len(local_stack.logs())
    status, body = local_stack.graphql(REGISTER, {"input": person})
    assert status == 200 and "errors" not in body, body
    token, user_id = body["data"]["register"]["accessToken"], body["data"]["register"]["user"]["id"]
    local_stack.wait_for(lambda: data(local_stack, WALLET, token)["wallet"], 30)

    session_id = str(uuid.uuid4())
    assert local_stack.put_event(dict(SEED, userId=user_id, sessionId=session_id))[0] == 202
    local_stack.wait_for(lambda: data(local_stack, INVOICES, token, {"first": 5})["invoices"]["items"], 60)

    poison_id = str(uuid.uuid4())
    poison = dict(SEED, sessionId=poison_id, userId=user_id, energyKwh=-3, driverEmail=person["email"],
                  name=person["name"], vehicle=person["vehicle"])
    assert local_stack.put_event(poison)[0] == 202
    record = local_stack.wait_for(lambda: decision_for(local_stack, poison_id), 60)
    assert record["action"] == "billing_failed"

    logs = local_stack.logs()[offset:]
    assert session_id in logs and user_id in logs  # the flow was logged, by ids
    leaks = {label: value for label, value in {
        "email": person["email"], "name": person["name"], "password": person["password"],
        "brand": person["vehicle"]["brand"], "model": person["vehicle"]["model"], "token": token,
        "token signature": token.rsplit(".", 1)[-1],
    }.items() if value in logs}
    assert leaks == {}
