"""Fixtures of the reconciler's unit tests: billing's published invoice states and the reconciler's parts."""

from __future__ import annotations

import pytest

from chalicelib.dlq.reconciler import Reconciler
from chalicelib.events.publisher import RecordingPublisher
from tests.fakes import InMemoryDeadLetters, InvoiceStates
from tests.unit.dlq.reconciler_parts import T0, RecordingQueues


@pytest.fixture
def invoices():
    """Billing's published ``invoice_state`` as the reconciler sees it: sessionId -> state (absent = no invoice)."""
    return InvoiceStates()


@pytest.fixture
def parts(invoices):
    audit, queues, publisher = InMemoryDeadLetters(), RecordingQueues(), RecordingPublisher(clock=lambda: T0)
    reconciler = Reconciler(audit, queues, publisher, lambda: T0, invoice_states=invoices, redrive_limit=3,
                            redrive_delay_seconds=30, session_source="jucr.session")
    return reconciler, audit, queues, publisher


