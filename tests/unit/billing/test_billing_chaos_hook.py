"""The chaos run's crash hook: random at its rate, and never a long run of steps without a crash."""

from __future__ import annotations

import random

import pytest

from devstack import chaos_hook


def test_the_hook_crashes_at_its_rate_and_at_the_latest_after_two_over_rate_steps(monkeypatch):
    monkeypatch.setattr(random, "random", lambda: 0.99)  # the draw never hits
    checkpoint = chaos_hook.chaos_checkpoint(0.25)
    for step in ("number_reserved", "invoice_stored", "wallet_debited", "ledger_entry_stored", "invoice_settled",
                 "pending_cleared", "events_published"):
        checkpoint(step)
    with pytest.raises(chaos_hook.ChaosCrash, match="chaos: crashed after invoice_marked"):
        checkpoint("invoice_marked")  # the 8th step without a crash: 2 / 0.25
    monkeypatch.setattr(random, "random", lambda: 0.1)
    with pytest.raises(chaos_hook.ChaosCrash):
        checkpoint("number_reserved")  # a draw under the rate


def test_the_local_stack_installs_the_hook_only_when_asked_and_refuses_a_bad_rate(monkeypatch):
    from chalicelib.billing import entry

    monkeypatch.setattr(entry, "step_hook", None)
    said: list[str] = []
    chaos_hook.install_from_environment({}, said.append)
    assert entry.step_hook is None and said == []
    chaos_hook.install_from_environment({"BILLING_CHAOS_CRASH_RATE": "0.5"}, said.append)
    assert callable(entry.step_hook) and "0.5" in said[0]
    for bad in ("lots", "1.5", "-0.1"):
        with pytest.raises(SystemExit, match="BILLING_CHAOS_CRASH_RATE"):
            chaos_hook.install_from_environment({"BILLING_CHAOS_CRASH_RATE": bad}, said.append)
