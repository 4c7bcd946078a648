"""The chaos run, small: at-least-once delivery with faults on, exactly-once effect, nothing lost.

Starts its own local stack (it stops the store mid-run, so it must not share the
session's ``local_stack``) and runs ``bench.chaos`` with 10 users and 150
SESSION_ENDED deliveries: 30 % of the sessions repeated, shuffled, ~3 % poison,
handler crashes after billing steps, and the store down for 6 s mid-run.
"""

from __future__ import annotations

import pytest

from bench import chaos


@pytest.mark.timeout(300)  # stack start (<=120 s) + settle (<=75 s) + checks, on a busy 2-core machine
def test_chaos_small_run_keeps_every_invariant(tmp_path):
    options = chaos.Options(users=10, events=150, duplicate_share=0.3, poison_share=0.03, crash_rate=0.02,
                            outage_seconds=6, outage_at=0.3, rate=0, seed=11, timeout=75,
                            opening_balance="100.00",  # low enough that some payments fail
                            data_dir=str(tmp_path / "stack"))

    report = chaos.run(options)

    chaos.print_report(report)
    failed = [(name, detail) for name, ok, detail in report.checks if not ok]
    assert not failed, failed
    names = {name for name, _, _ in report.checks}
    assert "faults happened: injected handler crashes" in names and "faults happened: store outage" in names
    numbers = report.numbers
    assert numbers["invoices"] == numbers["validSessions"] > 100
    assert numbers["paid"] > 0 and numbers["unpaid"] > 0, "both payment outcomes under faults"
    assert numbers["poisonSessions"] >= 3
    assert numbers["duplicatedSessions"] >= 30
    assert numbers["faults"]["chaosCrashes"] > 0
    assert numbers["latencySeconds"]["count"] == numbers["paid"]
