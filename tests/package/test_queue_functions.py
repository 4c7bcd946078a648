"""The five SQS consumers from the package: Lambda's SQS batch in, ``batchItemFailures`` out.

A poison record is the consumer's own business (it moves it to the DLQ, or parks it, and reports it
done); a record is named in ``batchItemFailures`` when a later try may succeed: a wallet not open
yet, or AWS unreachable for the one step that needs it (one instance of the function runs with
``AWS_ENDPOINT_URL`` at a closed port, the store still up).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.package.conftest import bus_event, failed_ids, scheduled_event, session_ended, user_registered

pytestmark = pytest.mark.xdist_group("package")


def _dead_letter_attrs(message: dict) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}


def test_billing_consumer_bills_retries_and_dead_letters(functions, stage, store):
    stage.drain("billing-dlq"), stage.published()
    paying, early = str(uuid.uuid4()), str(uuid.uuid4())
    stage.deliver(functions.emulator("wallet_opener"),
                  stage.sqs_event("wallets", [bus_event(user_registered(paying), "jucr.auth")]))
    good, not_yet = session_ended(paying), session_ended(early)
    poison = {**session_ended(paying), "energyKwh": "lots"}
    event = stage.sqs_event("billing", [bus_event(good), bus_event(not_yet), bus_event(poison)])
    ids = [r["messageId"] for r in event["Records"]]

    result = stage.deliver(functions.emulator("billing_consumer"), event)

    assert failed_ids(result) == [ids[1]], "only the session whose wallet is not open yet is retried"
    invoice = store.invoices.find_one({"sessionId": good["sessionId"]})
    assert invoice["status"] == "PAID" and invoice["totalCents"] == 1040
    # the wallet is read before anything is stored: a session of a user not registered yet waits, unbilled
    assert store.invoices.count_documents({"sessionId": not_yet["sessionId"]}) == 0
    assert store.invoices.count_documents({"sessionId": poison["sessionId"]}) == 0
    published = {(e["detail-type"], e["detail"].get("sessionId")) for e in stage.published()}
    assert published == {("INVOICE_GENERATED", good["sessionId"]), ("PAYMENT_COMPLETED", good["sessionId"])}
    [dead] = stage.drain("billing-dlq")
    assert json.loads(dead["Body"])["detail"]["sessionId"] == poison["sessionId"]
    attrs = _dead_letter_attrs(dead)
    assert (attrs["failureClass"], attrs["sourceQueue"], attrs["originalMessageId"]) == ("permanent", "billing",
                                                                                         ids[2])
    [retried] = stage.drain("billing")  # visible again at once (back-off base 0), receive count 2
    assert retried["MessageId"] == ids[1] and retried["Attributes"]["ApproximateReceiveCount"] == "2"


def test_wallet_opener_opens_wallets_and_dead_letters_poison(functions, stage, store):
    stage.drain("wallets-dlq")
    user_id = str(uuid.uuid4())
    poison = {**user_registered(str(uuid.uuid4())), "userId": "not-a-uuid"}
    event = stage.sqs_event("wallets", [bus_event(user_registered(user_id), "jucr.auth"),
                                        bus_event(poison, "jucr.auth")])

    assert stage.deliver(functions.emulator("wallet_opener"), event) == {"batchItemFailures": []}

    assert store.wallets.find_one({"_id": user_id})["balanceCents"] == 5000
    [dead] = stage.drain("wallets-dlq")
    assert _dead_letter_attrs(dead)["failureClass"] == "permanent"
    assert json.loads(dead["Body"])["detail"]["userId"] == "not-a-uuid"


def test_wallet_opener_keeps_poison_it_cannot_dead_letter(functions, stage, store, closed_port_url):
    """SQS unreachable: the wallet still opens (store only); the poison stays on its queue, never lost."""
    user_id = str(uuid.uuid4())
    poison = {**user_registered(str(uuid.uuid4())), "userId": "not-a-uuid"}
    event = stage.sqs_event("wallets", [bus_event(user_registered(user_id), "jucr.auth"),
                                        bus_event(poison, "jucr.auth")])
    cut_off = functions.emulator("wallet_opener", AWS_ENDPOINT_URL=closed_port_url)

    result = stage.deliver(cut_off, event)

    assert failed_ids(result) == [event["Records"][1]["messageId"]]
    assert store.wallets.count_documents({"_id": user_id}) == 1
    stage.release(event["Records"][1:])  # its back-off could not be set either: let it go for the next tests
    assert [m["MessageId"] for m in stage.drain("wallets")] == [event["Records"][1]["messageId"]]


def _dead(stage, short: str, body: str, **attrs: str) -> dict:
    return stage.sqs_event(short, [body], attrs)["Records"][0]


def test_billing_reconciler_compensates_poison_and_redrives_transient(functions, stage, store):
    stage.drain("billing"), stage.published()
    poison = {**session_ended(str(uuid.uuid4())), "energyKwh": "lots"}
    transient = session_ended(str(uuid.uuid4()))
    records = [_dead(stage, "billing-dlq", bus_event(poison), failureClass="permanent", sourceQueue="billing",
                     failureReason="energyKwh: Not a valid number."),
               _dead(stage, "billing-dlq", bus_event(transient))]

    assert stage.deliver(functions.emulator("reconcile_billing_dlq"), {"Records": records}) == {
        "batchItemFailures": []}

    [failed] = stage.published()
    assert (failed["detail-type"], failed["detail"]["sessionId"]) == ("BILLING_FAILED", poison["sessionId"])
    [back] = stage.drain("billing")
    assert json.loads(back["Body"])["detail"]["sessionId"] == transient["sessionId"]
    assert _dead_letter_attrs(back)["redriveCount"] == "1"
    actions = {d["businessKey"]["sessionId"]: (d["action"], d["status"]) for d in store.dead_letters.find(
        {"queue": "billing-dlq", "businessKey.sessionId": {"$in": [poison["sessionId"], transient["sessionId"]]}})}
    assert actions == {poison["sessionId"]: ("billing_failed", "done"), transient["sessionId"]: ("redriven", "done")}


def test_wallets_reconciler_parks_garbage_and_reports_a_redrive_it_cannot_send(functions, stage, store,
                                                                              closed_port_url):
    """AWS unreachable: parking needs only the store; the re-drive fails and the letter is reported."""
    garbage = _dead(stage, "wallets-dlq", "not an event", failureClass="permanent", sourceQueue="wallets")
    transient = _dead(stage, "wallets-dlq", bus_event(user_registered(str(uuid.uuid4())), "jucr.auth"))
    cut_off = functions.emulator("reconcile_wallets_dlq", AWS_ENDPOINT_URL=closed_port_url)

    result = stage.deliver(cut_off, {"Records": [garbage, transient]})

    assert failed_ids(result) == [transient["messageId"]]
    parked = store.dead_letters.find_one({"queue": "wallets-dlq", "messageId": garbage["messageId"]})
    assert (parked["action"], parked["status"]) == ("parked", "done")

    # AWS back: the same letter is re-driven to its source queue.
    stage.drain("wallets")
    assert stage.deliver(functions.emulator("reconcile_wallets_dlq"), {"Records": [transient]}) == {
        "batchItemFailures": []}
    [back] = stage.drain("wallets")
    assert back["Body"] == transient["body"] and _dead_letter_attrs(back)["redriveCount"] == "1"


def test_ocm_sync_reconciler_parks_failed_schedule_deliveries(functions, stage, store):
    """A schedule target that gave up: EventBridge puts the scheduled event on the DLQ with its error."""
    body = json.dumps(scheduled_event("jucr-prod-ocm_sync"))
    letter = _dead(stage, "ocm-sync-dlq", body, ERROR_CODE="Lambda.ServiceException",
                   ERROR_MESSAGE="Rate exceeded")
    not_json = _dead(stage, "ocm-sync-dlq", "{truncated")

    assert stage.deliver(functions.emulator("reconcile_ocm_sync_dlq"), {"Records": [letter, not_json]}) == {
        "batchItemFailures": []}

    decided = {d["messageId"]: d for d in store.dead_letters.find({"queue": "ocm-sync-dlq"})}
    assert (decided[letter["messageId"]]["action"], decided[letter["messageId"]]["status"]) == ("parked", "done")
    assert (decided[not_json["messageId"]]["action"], decided[not_json["messageId"]]["status"]) == ("parked", "done")
