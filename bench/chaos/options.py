"""The chaos run's knobs and their command line (``python -m bench.chaos --help``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class Options:
    users: int = 200
    events: int = 10_000
    duplicate_share: float = 0.3
    poison_share: float = 0.02
    crash_rate: float = 0.01
    outage_seconds: float = 8.0
    outage_at: float = 0.4
    rate: float = 25.0
    max_backlog: int = 100
    seed: int = 7
    opening_balance: str = "400.00"
    timeout: float = 1800.0
    data_dir: str | None = None


def parse_args(argv: list[str] | None = None, description: str = "") -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=description)
    defaults = Options()
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--events", type=int, default=defaults.events, help="SESSION_ENDED deliveries in all")
    parser.add_argument("--duplicate-share", type=float, default=defaults.duplicate_share,
                        help="share of distinct sessions delivered more than once")
    parser.add_argument("--poison-share", type=float, default=defaults.poison_share,
                        help="share of distinct sessions with an invalid payload")
    parser.add_argument("--crash-rate", type=float, default=defaults.crash_rate,
                        help="probability of a handler crash after each billing step")
    parser.add_argument("--outage-seconds", type=float, default=defaults.outage_seconds,
                        help="store down this long mid-run (0 = no outage)")
    parser.add_argument("--outage-at", type=float, default=defaults.outage_at,
                        help="share of the events put before the outage starts")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="events put per second at most (0 = no cap)")
    parser.add_argument("--max-backlog", type=int, default=defaults.max_backlog,
                        help="hold puts while the billing queue has more messages than this (0 = never)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--opening-balance", default=defaults.opening_balance)
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds to wait for settling")
    parser.add_argument("--data-dir", default=None)
    return Options(**{k.replace("-", "_"): v for k, v in vars(parser.parse_args(argv)).items()})
