"""Only the Session Service's SESSION_ENDED is compensated: the body's ``source`` decides, not the attributes.

Anyone who can send to billing-dlq chooses the attributes, and a letter SQS moved after its
receives carries none; before, such a letter naming a session got a BILLING_FAILED for the
user it named whatever its source.
"""

from __future__ import annotations

import pytest

from chalicelib.contracts.events import BILLING_FAILED
from chalicelib.dlq.letters import read_body
from chalicelib.dlq.reconciler import BILLING_FAILED_ACTION, PARKED, REDRIVEN, Reconciler
from chalicelib.events.publisher import RecordingPublisher
from tests.fakes import InMemoryDeadLetters, InvoiceStates
from tests.unit.dlq.reconciler_parts import SESSION, T0, RecordingQueues, bus_body, letter

PERMANENT = {"failureClass": "permanent", "errorType": "SessionImplausible", "sourceQueue": "billing",
             "failureReason": "implausible session"}
EXHAUSTED = {"redriveCount": "3"}  # moved by SQS after the last re-drive: no failureClass, no errorType
# "none": moved by SQS after the first life's receives, or sent by hand: no attributes at all.


def test_the_body_source_is_read():
    assert read_body(bus_body(SESSION, source="acme.forger")).source == "acme.forger"
    assert read_body(bus_body(SESSION, source=None)).source is None
    assert read_body(bus_body(dict(SESSION, energyKwh=-1), source="acme.forger")).source == "acme.forger"


@pytest.mark.parametrize("source", ["acme.forger", "jucr.auth", "jucr.dlq", None])
@pytest.mark.parametrize("attributes", [PERMANENT, EXHAUSTED, {}], ids=["permanent", "exhausted", "none"])
def test_a_letter_from_another_source_is_parked_never_compensated(parts, source, attributes):
    """Not re-driven either: billing would refuse it as ``UntrustedSource`` on arrival."""
    reconciler, audit, queues, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION, source=source), **attributes))
    assert decision.action == PARKED
    assert publisher.of_type(BILLING_FAILED) == [] and queues.sent == []
    assert audit.docs[decision.key]["parked"] is True, "kept for a person to look at"


@pytest.mark.parametrize("attributes", [PERMANENT, EXHAUSTED], ids=["permanent", "exhausted"])
def test_the_same_letter_from_the_trusted_source_is_compensated(parts, attributes):
    reconciler, _, _, publisher = parts
    decision = reconciler.handle("billing-dlq", letter(bus_body(SESSION), **attributes))
    assert decision.action == BILLING_FAILED_ACTION
    assert len(publisher.of_type(BILLING_FAILED)) == 1


def test_the_trusted_source_is_the_configured_session_source():
    publisher = RecordingPublisher(clock=lambda: T0)
    reconciler = Reconciler(InMemoryDeadLetters(), RecordingQueues(), publisher, lambda: T0,
                            invoice_states=InvoiceStates(), redrive_limit=3, redrive_delay_seconds=30,
                            session_source="acme.sessions")
    assert reconciler.handle("billing-dlq", letter(bus_body(SESSION), **PERMANENT)).action == PARKED
    ours = letter(bus_body(SESSION, source="acme.sessions", bus_id="bus-2"), "m-2", **PERMANENT)
    assert reconciler.handle("billing-dlq", ours).action == BILLING_FAILED_ACTION
    assert len(publisher.of_type(BILLING_FAILED)) == 1


def test_a_wallets_letter_from_another_source_is_parked_not_redriven(parts):
    reconciler, _, queues, _ = parts
    registered = {"eventType": "USER_REGISTERED", "userId": SESSION["userId"], "registeredAt": "2026-02-20T10:00:00Z"}
    forged = reconciler.handle("wallets-dlq", letter(bus_body(registered, "USER_REGISTERED", source="acme.forger")))
    assert forged.action == PARKED and queues.sent == []
    ours_body = bus_body(registered, "USER_REGISTERED", "bus-2", "jucr.auth")
    ours = reconciler.handle("wallets-dlq", letter(ours_body, "m-2"))
    assert ours.action == REDRIVEN and len(queues.sent) == 1
