"""The chaos run's crash hook: random at its rate, and never a long run of steps without a crash."""

from __future__ import annotations

import random

import pytest

from chalicelib.billing import entry


def test_the_hook_crashes_at_its_rate_and_at_the_latest_after_two_over_rate_steps(monkeypatch):
    monkeypatch.setattr(entry, "_steps_since_crash", 0)
    monkeypatch.setattr(random, "random", lambda: 0.99)  # the draw never hits
    checkpoint = entry._chaos_checkpoint(0.25)
    for step in ("number_reserved", "invoice_stored", "wallet_debited", "ledger_entry_stored", "invoice_settled",
                 "pending_cleared", "events_published"):
        checkpoint(step)
    with pytest.raises(entry.ChaosCrash, match="chaos: crashed after invoice_marked"):
        checkpoint("invoice_marked")  # the 8th step without a crash: 2 / 0.25
    monkeypatch.setattr(random, "random", lambda: 0.1)
    with pytest.raises(entry.ChaosCrash):
        checkpoint("number_reserved")  # a draw under the rate
