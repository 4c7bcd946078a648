"""The billing dependencies on the embedded store, with a recording publisher and a fixed clock."""

from __future__ import annotations

import pytest

from chalicelib.billing.repository import INDEXES, BillingRepository
from chalicelib.billing.service import BillingDeps, BillingPolicy
from chalicelib.events.publisher import RecordingPublisher
from chalicelib.store import ensure_indexes
from tests.integration.billing.sessions import NOW


@pytest.fixture
def deps(db, settings):
    ensure_indexes(db, INDEXES)
    return BillingDeps(repo=BillingRepository(db), publisher=RecordingPublisher(clock=lambda: NOW),
                       clock=lambda: NOW, policy=BillingPolicy.from_settings(settings.billing))
