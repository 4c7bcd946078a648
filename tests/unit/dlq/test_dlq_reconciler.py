"""Reconciler decisions with fakes of our own ports: in-memory audit, recording queues and publisher."""

from __future__ import annotations

import json

import pytest

from chalicelib.contracts.errors import WalletNotOpen
from chalicelib.contracts.events import BILLING_FAILED, derived_event_id, parse_event
from chalicelib.dlq.letters import letter_key, read_body
from chalicelib.dlq.reconciler import (
    BILLING_FAILED_ACTION,
    DUPLICATE,
    PARKED,
    REDRIVEN,
    classify,
    redrive_delay,
)
from chalicelib.dlq.repository import DONE
from tests.unit.dlq.reconciler_parts import (
    SESSION,
    bus_body,
    letter,
)


def test_transient_dead_letter_is_redriven_with_its_count_and_a_growing_delay(parts):
    reconciler, audit, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION)))
    assert decision.action == REDRIVEN
    assert queues.sent == [{"queue": "billing", "body": bus_body(SESSION), "delay": 30,
                            "attributes": {"redriveCount": "1", "sourceQueue": "billing"}}]
    second = reconciler.handle("billing-dlq", letter(bus_body(SESSION), "m-2", redriveCount="1"))
    assert second.action == REDRIVEN and queues.sent[-1]["attributes"]["redriveCount"] == "2"
    assert queues.sent[-1]["delay"] == 60
    assert publisher.published == []
    assert audit.docs[decision.key]["status"] == DONE and audit.docs[decision.key]["action"] == REDRIVEN


def test_redrives_are_bounded_then_billing_failed_is_published_and_audited(parts):
    reconciler, audit, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), redriveCount="3"))
    assert decision.action == BILLING_FAILED_ACTION
    assert queues.sent == []
    [event] = publisher.of_type(BILLING_FAILED)
    parsed = parse_event(BILLING_FAILED, event)
    assert parsed.payload["sessionId"] == SESSION["sessionId"] and parsed.payload["userId"] == SESSION["userId"]
    assert parsed.payload["originalEventId"] == "bus-1"
    assert "after 3 re-drive(s)" in parsed.payload["reason"]
    assert event["eventId"] == derived_event_id(BILLING_FAILED, f"{SESSION['sessionId']}:p0")
    record = audit.docs[decision.key]
    assert record["businessKey"] == {"sessionId": SESSION["sessionId"], "userId": SESSION["userId"]}
    assert record["failureClass"] == "permanent" and record["parked"] is True
    assert json.loads(json.dumps(record["body"]))["detail"]["sessionId"] == SESSION["sessionId"]


def test_permanent_verdict_from_the_consumer_is_compensated_at_once(parts):
    reconciler, _, queues, publisher = parts
    body = bus_body(dict(SESSION, energyKwh=-1))
    decision = reconciler.handle("billing-dlq", letter(body, failureClass="permanent",
                                                        failureReason="energyKwh: must be >= 0",
                                                        sourceQueue="billing"))
    assert decision.action == BILLING_FAILED_ACTION and queues.sent == []
    assert decision.reason.startswith("invalid payload")
    assert len(publisher.of_type(BILLING_FAILED)) == 1


def test_wallet_not_open_yet_is_treated_as_early_not_wrong(parts):
    reconciler, audit, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), failureClass="permanent",
                                                        errorType=WalletNotOpen.__name__, failureReason="retrying"))
    assert decision.action == REDRIVEN and "may be early" in decision.reason
    assert len(queues.sent) == 1 and publisher.published == []
    assert audit.docs[decision.key]["errorType"] == "WalletNotOpen"


@pytest.mark.parametrize("reason", ["WALLET_NOT_FOUND", "wallet not open yet for this session's user"])
def test_the_reason_text_alone_no_longer_makes_a_permanent_letter_early(parts, reason):
    """The cause travels as ``errorType``; a phrase in ``failureReason`` is for a person, not the reconciler."""
    reconciler, _, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), failureClass="permanent",
                                                        errorType="PermanentError", failureReason=reason))
    assert decision.action == BILLING_FAILED_ACTION and queues.sent == []
    assert len(publisher.of_type(BILLING_FAILED)) == 1


@pytest.mark.parametrize("error_type", ["ValidationError", "PermanentStoreError", "PermanentError", "SessionReused"])
def test_a_permanent_error_type_is_permanent_even_without_failure_class(parts, error_type):
    reconciler, _, queues, _ = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), errorType=error_type))
    assert (decision.action, decision.failure_class, decision.error_type) == (
        BILLING_FAILED_ACTION, "permanent", error_type)
    assert queues.sent == []


def test_an_error_type_that_is_not_a_class_name_counts_as_absent(parts):
    reconciler, audit, queues, _ = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), errorType="WalletNotOpen; x@y.example"))
    assert decision.action == REDRIVEN and "retries exhausted" in decision.reason
    assert audit.docs[decision.key]["errorType"] is None


def test_the_same_dead_letter_twice_has_the_effect_of_once(parts):
    reconciler, _, queues, publisher = parts
    poison = letter(bus_body({"sessionId": SESSION["sessionId"]}), failureClass="permanent", failureReason="bad")
    first = reconciler.handle("billing-dlq", poison)
    again = reconciler.handle("billing-dlq", letter(poison.body, "m-other", failureClass="permanent"))
    assert first.action == BILLING_FAILED_ACTION and again.action == DUPLICATE
    assert len(publisher.published) == 1
    transient = letter(bus_body(SESSION, bus_id="bus-2"))
    reconciler.handle("billing-dlq", transient)
    assert reconciler.handle("billing-dlq", transient).action == DUPLICATE
    assert len(queues.sent) == 1


def test_a_crash_between_claim_and_done_is_finished_on_redelivery(parts):
    reconciler, audit, _, publisher = parts
    publisher.fail_next = 1
    poison = letter(bus_body({"sessionId": SESSION["sessionId"]}), failureClass="permanent")
    with pytest.raises(Exception, match="injected"):
        reconciler.handle("billing-dlq", poison)
    assert next(iter(audit.docs.values()))["status"] == "pending"
    assert reconciler.handle("billing-dlq", poison).action == BILLING_FAILED_ACTION
    assert len(publisher.published) == 1


@pytest.mark.parametrize("body", ["not json", json.dumps([1, 2]), json.dumps({"detail-type": "X", "detail": {}}),
                                  json.dumps({"detail-type": "Scheduled Event", "source": "aws.events",
                                              "detail": {}})])
def test_unparseable_letters_are_parked_never_redriven(parts, body):
    reconciler, audit, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(body))
    assert decision.action == PARKED and decision.reason.startswith("unparseable")
    assert queues.sent == [] and publisher.published == []
    assert audit.docs[decision.key]["parked"] is True


def test_ocm_sync_dead_letters_are_parked_with_the_lambda_error(parts):
    reconciler, _, queues, _ = parts
    scheduled = json.dumps({"id": "sched-1", "detail-type": "Scheduled Event", "source": "aws.events",
                            "detail": {}})
    decision = reconciler.handle("ocm-sync-dlq", letter(scheduled, ErrorMessage="Task timed out"))
    assert decision.action == PARKED and queues.sent == []


def test_invalid_user_registered_in_wallets_dlq_is_parked_not_billing_failed(parts):
    reconciler, _, queues, publisher = parts
    body = bus_body({"userId": "not-a-uuid"}, "USER_REGISTERED")
    assert reconciler.handle("wallets-dlq", letter(body)).action == PARKED
    assert publisher.published == [] and queues.sent == []


def test_classify_and_keys():
    assert classify(letter(bus_body(SESSION)), read_body(bus_body(SESSION)))[0] == "transient"
    assert classify(letter(bus_body(SESSION), failureClass="permanent"), read_body(bus_body(SESSION)))[0] == \
        "permanent"
    early = classify(letter(bus_body(SESSION), errorType="WalletNotOpen"), read_body(bus_body(SESSION)))
    assert (early.failure_class, early.error_type) == ("transient", "WalletNotOpen")
    # A bus target that gave up names its error in ERROR_CODE, not errorType: transient, its text repeated.
    foreign = classify(letter(bus_body(SESSION), ERROR_CODE="ThrottlingException"), read_body(bus_body(SESSION)))
    assert foreign == ("transient", "ThrottlingException", None)
    assert [redrive_delay(30, n) for n in range(7)] == [30, 60, 120, 240, 480, 900, 900]
    one = letter(bus_body(SESSION))
    assert letter_key("billing-dlq", one, read_body(one.body)) == "billing-dlq:bus-1:r0:p0"
    two = letter("garbage")
    assert letter_key("billing-dlq", two, read_body("garbage")).startswith("billing-dlq:md5-")


def test_pii_in_a_poison_body_is_not_kept(parts):
    reconciler, audit, _, _ = parts
    body = bus_body({"sessionId": SESSION["sessionId"], "email": "driver@example.com", "note": "x@y.example"})
    decision = reconciler.handle("billing-dlq", letter(body, failureClass="permanent"))
    assert "example" not in json.dumps(audit.docs[decision.key], default=str)


def test_a_replay_that_fails_permanently_again_is_a_new_dead_letter(parts):
    reconciler, _, _, publisher = parts
    body = bus_body({"sessionId": SESSION["sessionId"]})
    first = reconciler.handle("billing-dlq", letter(body, failureClass="permanent", originalMessageId="src-1"))
    copy_of_first = reconciler.handle("billing-dlq", letter(body, "m-9", failureClass="permanent",
                                                             originalMessageId="src-1"))
    # The batch runner drops replayCount when it dead-letters, but the replayed message had a new id.
    after_replay = reconciler.handle("billing-dlq", letter(body, "m-10", failureClass="permanent",
                                                            originalMessageId="src-2"))
    assert (first.action, copy_of_first.action, after_replay.action) == (
        BILLING_FAILED_ACTION, DUPLICATE, BILLING_FAILED_ACTION)
    assert len(publisher.published) == 2
