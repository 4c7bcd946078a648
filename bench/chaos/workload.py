"""What the chaos run puts on the stack: users through ``register``, then SESSION_ENDED on the bus.

The plan is deterministic for a seed: distinct sessions, a share of them delivered more
than once, a share poisoned (an invalid payload with valid ids), everything shuffled.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.chaos.options import Options
from bench.chaos.stack import ChaosStack

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }"
POISONS: tuple[tuple[str, Any], ...] = (
    ("energyKwh", -3), ("energyKwh", "lots"), ("durationMinutes", -5), ("endedAt", "yesterday"),
    ("stationId", None), ("durationMinutes", 1.5), ("energyKwh", 10_000_000),
)
STATIONS = [str(uuid.UUID(int=i + 1)) for i in range(50)]


def register_users(stack: ChaosStack, count: int, seed: int) -> list[str]:
    """Register through ``/graphql`` (4 concurrent clients); returns the user ids."""

    def one(i: int) -> str:
        status, body = stack.graphql(REGISTER, {"input": {
            "email": f"chaos.{seed}.{i}@example.com", "name": f"Chaos Driver {i}", "password": "correct horse battery",
            "vehicle": {"brand": "Kia", "model": "EV6", "batteryCapacity": 77.4}}})
        if status != 200 or not isinstance(body, dict) or body.get("errors"):
            raise RuntimeError(f"register failed: {status} {body}")
        return body["data"]["register"]["user"]["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


@dataclass
class Plan:
    deliveries: list[dict[str, Any]]  # in put order
    valid: set[str]
    poison: set[str]
    duplicated: set[str]


def make_plan(users: list[str], options: Options) -> Plan:
    """``events`` deliveries: distinct sessions, a share of them repeated, shuffled; some poison."""
    rng = random.Random(options.seed)
    distinct = max(1, round(options.events / (1 + options.duplicate_share)))
    sessions = [_session(rng, users) for _ in range(distinct)]
    poison = set()
    for session in rng.sample(sessions, round(distinct * options.poison_share)):
        key, value = rng.choice(POISONS)
        if value is None:
            del session[key]
        else:
            session[key] = value
        poison.add(session["sessionId"])
    deliveries = list(sessions)
    extra = options.events - distinct
    repeated = rng.sample(sessions, min(len(sessions), max(0, round(distinct * options.duplicate_share))))
    for i in range(extra if repeated else 0):
        deliveries.append(dict(repeated[i % len(repeated)]))
    rng.shuffle(deliveries)
    ids = {s["sessionId"] for s in sessions}
    return Plan(deliveries, ids - poison, poison, {s["sessionId"] for s in repeated[:extra]})


def _session(rng: random.Random, users: list[str]) -> dict[str, Any]:
    return {"eventType": "SESSION_ENDED", "sessionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "userId": rng.choice(users), "stationId": rng.choice(STATIONS),
            "energyKwh": round(rng.uniform(1, 60), 3), "durationMinutes": rng.randint(5, 240),
            # Within the last 29 days of today (UTC): billing refuses sessions older than SESSION_MAX_AGE_DAYS.
            "endedAt": (dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                        - dt.timedelta(days=rng.randint(1, 28), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
                        ).strftime("%Y-%m-%dT%H:%M:%SZ")}


def put_all(stack: ChaosStack, plan: Plan, rate: float, max_backlog: int, on_progress: Callable[[int], None],
            max_hold: float = 600.0) -> dict[str, float]:
    """PutEvents in batches of 10; returns the first put time per session.

    Paced twice: at most ``rate`` events/s (0 = no limit), and never while the
    billing queue holds more than ``max_backlog`` messages (0 = no limit).
    The backlog bound is for moto, not for the system under test: moto's
    ``ReceiveMessage`` walks the whole queue, so at 5,000 queued messages one
    receive takes ~5 s and the run measures moto instead of billing. SQS has
    no such cost, so holding puts back is what a producer there would not
    notice.
    """
    events = stack.client("events")
    bus = stack.env["EVENT_BUS_NAME"]
    first_put: dict[str, float] = {}
    started = time.monotonic()
    for start in range(0, len(plan.deliveries), 10):
        batch = plan.deliveries[start:start + 10]
        if rate > 0:
            due = started + start / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
        _hold_while_backlogged(stack, max_backlog, max_hold)
        now = time.time()
        for delivery in batch:
            first_put.setdefault(delivery["sessionId"], now)
        # occurredAt = the first put of the session (a repeat is the same event): the consumer's
        # EventLatencyMs then measures put -> handling instead of the synthetic endedAt.
        entries = [{"Source": "jucr.session", "DetailType": "SESSION_ENDED", "EventBusName": bus,
                    "Detail": json.dumps({**d, "occurredAt": _iso(first_put[d["sessionId"]])})} for d in batch]
        for attempt in range(5):
            if not events.put_events(Entries=entries).get("FailedEntryCount", 0):
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError("the bus kept refusing events")
        on_progress(start + len(batch))
    return first_put


def _hold_while_backlogged(stack: ChaosStack, max_backlog: int, max_hold: float) -> None:
    held_since = time.monotonic()
    while max_backlog and stack.queues.depth("billing")["ApproximateNumberOfMessages"] > max_backlog:
        if time.monotonic() - held_since > max_hold:
            raise RuntimeError(f"the billing queue stayed above {max_backlog} messages for {max_hold:.0f} s: "
                               "billing stopped draining (see stack.log in the data dir)")
        time.sleep(0.5)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
