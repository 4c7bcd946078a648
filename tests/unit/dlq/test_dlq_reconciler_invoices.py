"""A session billing already invoiced is never compensated, unless billing refused the letter as a re-used sessionId."""

from __future__ import annotations

import json

import pytest

from chalicelib.contracts.errors import SessionReused
from chalicelib.contracts.events import BILLING_FAILED
from chalicelib.dlq.reconciler import (
    ACTION_METRICS,
    ALREADY_BILLED,
    BILLED_EVENTS_PENDING,
    BILLING_FAILED_ACTION,
    PARKED,
    REDRIVEN,
)
from chalicelib.dlq.repository import DONE
from tests.unit.dlq.reconciler_parts import (
    EVENTS_PENDING,
    EVENTS_PUBLISHED,
    SESSION,
    bus_body,
    invoice,
    letter,
)

# --- a session that billing already invoiced is never compensated ------------------------------

@pytest.mark.parametrize("attrs", [
    {},  # SQS moved it after maxReceiveCount (bus down: PublishError on every receive)
    {"failureClass": "permanent", "failureReason": "PermanentStoreError after the debit", "sourceQueue": "billing"},
], ids=["transient", "permanent-verdict"])
def test_invoiced_but_unpublished_session_is_redriven_not_billing_failed(parts, invoices, attrs):
    reconciler, audit, queues, publisher = parts
    invoices.state[SESSION["sessionId"]] = EVENTS_PENDING
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), **attrs))
    assert decision.action == REDRIVEN
    assert publisher.published == []
    [sent] = queues.sent
    assert sent["queue"] == "billing" and sent["body"] == bus_body(SESSION)
    assert sent["attributes"]["redriveCount"] == "1"
    assert "events are not published" in decision.reason
    assert audit.docs[decision.key]["parked"] is False


@pytest.mark.parametrize("attrs", [{}, {"failureClass": "permanent", "failureReason": "store says no"}],
                         ids=["transient", "permanent-verdict"])
def test_invoiced_but_unpublished_past_the_limit_is_parked_as_billed_events_pending(parts, invoices, attrs):
    reconciler, audit, queues, publisher = parts
    invoices.state[SESSION["sessionId"]] = EVENTS_PENDING
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), redriveCount="3", **attrs))
    assert decision.action == BILLED_EVENTS_PENDING
    assert publisher.published == [] and queues.sent == []
    record = audit.docs[decision.key]
    assert record["parked"] is True and record["status"] == DONE and record["action"] == BILLED_EVENTS_PENDING
    assert json.loads(json.dumps(record["body"]))["detail"]["sessionId"] == SESSION["sessionId"]  # kept for replay
    assert "after 3 re-drive(s)" in decision.reason
    # It counts as parked, so the <dlq>-parked alarm pages someone.
    assert ACTION_METRICS[BILLED_EVENTS_PENDING] == ACTION_METRICS[PARKED]


def test_invoiced_and_published_session_is_neither_compensated_nor_redriven(parts, invoices):
    reconciler, audit, queues, publisher = parts
    invoices.state[SESSION["sessionId"]] = EVENTS_PUBLISHED
    for redrives in ("0", "3"):
        decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), redriveCount=redrives,
                                                            failureClass="permanent"))
        assert decision.action == ALREADY_BILLED
        assert audit.docs[decision.key]["parked"] is False and audit.docs[decision.key]["body"] is None
    assert publisher.published == [] and queues.sent == []


def test_without_an_invoice_billing_failed_is_still_published(parts, invoices):
    reconciler, _, _, publisher = parts
    other = "1d5e2b1c-98a4-4c7e-9a6c-2f0f1f3a4b5c"
    invoices.state[other] = EVENTS_PENDING  # another session's invoice does not count
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), redriveCount="3"))
    assert decision.action == BILLING_FAILED_ACTION and len(publisher.of_type(BILLING_FAILED)) == 1
    assert invoices.asked == [SESSION["sessionId"]]


def test_another_users_invoice_under_the_same_session_id_is_not_this_session_billed(parts, invoices):
    """A re-used sessionId: billing refused it (SessionReused); the invoice it found is someone else's."""
    reconciler, audit, queues, publisher = parts
    invoices.state[SESSION["sessionId"]] = invoice(True, user_id="1d5e2b1c-98a4-4c7e-9a6c-2f0f1f3a4b5c")
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), failureClass="permanent",
                                                        errorType=SessionReused.__name__,
                                                        failureReason="already billed for another user"))
    assert decision.action == BILLING_FAILED_ACTION and queues.sent == []
    [event] = publisher.of_type(BILLING_FAILED)
    assert event["userId"] == SESSION["userId"]
    assert audit.docs[decision.key]["parked"] is True


def test_the_same_users_invoice_does_not_make_a_reused_session_id_already_billed(parts, invoices):
    """Same user, other usage under a billed sessionId: billing refused the event, so it is compensated."""
    reconciler, audit, queues, publisher = parts
    invoices.state[SESSION["sessionId"]] = invoice(True, user_id=SESSION["userId"])
    decision = reconciler.handle("billing-dlq", letter(bus_body(dict(SESSION, energyKwh=99)),
                                                        failureClass="permanent", errorType=SessionReused.__name__,
                                                        failureReason="a re-used sessionId: energyKwh differs"))
    assert decision.action == BILLING_FAILED_ACTION and queues.sent == []
    assert [e["userId"] for e in publisher.of_type(BILLING_FAILED)] == [SESSION["userId"]]
    assert audit.docs[decision.key]["errorType"] == SessionReused.__name__


def test_other_queues_do_not_look_at_invoices(parts, invoices):
    reconciler, _, _, _ = parts
    reconciler.handle("wallets-dlq", letter(bus_body({"userId": SESSION["userId"]}, "USER_REGISTERED")))
    assert invoices.asked == []
