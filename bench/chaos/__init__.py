"""Chaos run: at-least-once delivery, exactly-once effect, nothing lost, under faults, on the local stack.

Run: ``make chaos`` or ``.venv/bin/python -m bench.chaos [--users 200] [--events 10000]
[--duplicate-share 0.3] [--poison-share 0.02] [--crash-rate 0.01] [--outage-seconds 8] [--rate 25]
[--max-backlog 100] [--seed 7]``. The defaults are a 10,000-delivery run; see docs/performance.md "Proof under load
and faults" for the latest numbers and how long it takes. Puts are capped at ``--rate`` and held
while moto's billing queue holds more than ``--max-backlog`` messages (see ``put_all``).

What it does, in order:

1. starts its own local stack (``python -m devstack`` on free ports, own data dir, by the
   ``local_stack`` test fixture's helper ``devstack/stack_process.py``) with
   ``BILLING_CHAOS_CRASH_RATE`` set: after each billing
   step (``chalicelib.billing.sessions.STEPS``, run once per batch) the consumer raises
   ``ChaosCrash`` with that probability, and at the latest after ``2 / rate`` steps without one
   (``chalicelib/billing/entry.py``, honoured only in the local stage), so every session of the
   batch still in flight is resumed by a redelivery;
2. adds a capture rule + SQS queue on the bus (moto) that records every ``jucr.billing`` and
   ``jucr.dlq`` event, and drains it in a thread;
3. registers the users through ``POST /graphql`` ``register`` (wallets are then opened by the
   ``USER_REGISTERED`` -> wallets queue -> wallet opener choreography) and waits for the wallets;
4. puts the ``SESSION_ENDED`` events on the bus with ``PutEvents`` (what the Session Service does;
   batches of 10, source ``jucr.session``): ``events`` deliveries in all, a share of the distinct
   sessions delivered more than once, everything shuffled (out of order), a share of poison events
   (invalid payloads with valid ids);
5. mid-run takes the store away: the embedded MongoDB of the stack (found by its port in
   ``/proc``) is terminated, stays down ``--outage-seconds``, and is started again by this script
   with the same command line (same port, same H2 data file);
6. waits until every queue is empty and all outcomes are on the bus, then checks the invariants
   (see ``check_*``), prints counts, rates and latency percentiles, and exits 1 on any mismatch.

Modules, by concern: ``options`` (the knobs), ``stack`` (the stack, the store fault, the bus
capture), ``workload`` (users and the SESSION_ENDED plan and puts), ``checks`` (the
invariants), ``measures`` (latency and the logs' fault evidence), ``runner`` (the run in order).
"""

from __future__ import annotations

from bench.chaos.checks import Report
from bench.chaos.options import Options, parse_args
from bench.chaos.runner import print_report, run

__all__ = ["Options", "Report", "main", "parse_args", "print_report", "run"]


def main(argv: list[str] | None = None) -> int:
    from bench.chaos.runner import main as run_main

    return run_main(argv, description=__doc__.splitlines()[0])
