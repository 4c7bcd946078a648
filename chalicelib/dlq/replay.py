"""Replay dead letters to their source queue after a fix, safely.

Candidates come from two places: messages still in the dead-letter queue
(the reconciler has not handled them, e.g. it was failing) and letters the
reconciler parked in ``dead_letters`` (compensated or parked, body kept).
Each candidate is checked before anything is sent:
- it must validate against the current contract (an invalid one is reported,
  never replayed);
- its effect must not already be recorded (billing's published ``invoice_state``
  tells: a ``SESSION_ENDED`` whose invoice's events are published is skipped; one
  whose invoice is stored but whose events are not is replayed, since billing
  resumes from the step it reached and publishes them);
- it must not have been replayed before (``replay:<letter key>`` is inserted
  first; a duplicate key means someone already did).
A dry run (the default) does only the checks and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.billing.queries import InvoiceState
from chalicelib.contracts.events import SESSION_ENDED
from chalicelib.dlq.letters import (
    ATTR_REDRIVE_COUNT,
    ATTR_REPLAY_COUNT,
    ATTR_SOURCE_QUEUE,
    DeadLetter,
    Reading,
    letter_key,
    read_body,
    source_queue_of,
)
from chalicelib.dlq.queues import DLQ_SHORT_NAMES, SQS_MAX_VISIBILITY, NotADeadLetterQueue, SqsQueues
from chalicelib.dlq.repository import DONE, DeadLetterRepository, InvoiceLookup, invoice_for
from chalicelib.timestamps import aware_utc

REPLAY = "replay"
# Why a candidate is not replayed: the audit records "skip:<verdict>", and the CLI's --action accepts them.
NOT_REPLAYABLE = "not-replayable"
INVALID = "invalid"
ALREADY_APPLIED = "already-applied"
ALREADY_REPLAYED = "already-replayed"
SKIP_VERDICTS = (ALREADY_APPLIED, ALREADY_REPLAYED, INVALID, NOT_REPLAYABLE)
_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# How long held messages stay invisible: enough for the replay loop (a send, a delete and two
# store writes per message), so a receipt handle is still the latest when we delete with it.
HOLD_BASE_SECONDS = 60
HOLD_PER_MESSAGE_SECONDS = 2


def hold_seconds(count: int) -> int:
    return min(SQS_MAX_VISIBILITY, HOLD_BASE_SECONDS + HOLD_PER_MESSAGE_SECONDS * count)


def parse_age(text: str) -> dt.timedelta:
    """``30m``, ``2h``, ``1d``, ``45s`` -> timedelta; ValueError otherwise."""
    match = _AGE.match(text.strip())
    if not match:
        raise ValueError(f"age {text!r} is not like 30m, 2h or 1d")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass
class Candidate:
    """A dead letter that might be replayed, wherever it was found."""

    origin: str  # "queue" or "audit"
    key: str
    letter: DeadLetter
    reading: Reading
    when: dt.datetime | None
    record: dict[str, Any] | None = None
    verdict: str = ""
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key, "origin": self.origin, "messageId": self.letter.message_id,
            "eventType": self.reading.event_type, "businessKey": self.reading.business_key(),
            "deadSince": self.when.isoformat() if self.when else None,
            "failureReason": (self.record or {}).get("reason") or self.letter.failure_reason,
            "verdict": self.verdict, "detail": self.detail, **({"result": self.result} if self.result else {}),
        }


def letter_from_record(record: dict[str, Any]) -> DeadLetter:
    """Rebuild the dead letter the reconciler parked, with the history attributes it had."""
    body = record.get("body")
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    attrs = {ATTR_REDRIVE_COUNT: str(record.get("redriveCount", 0)),
             ATTR_REPLAY_COUNT: str(record.get("replayCount", 0))}
    if record.get("sourceQueue"):
        attrs[ATTR_SOURCE_QUEUE] = record["sourceQueue"]
    return DeadLetter(record.get("messageId") or record["_id"], text, attrs)


@dataclass
class Filters:
    max: int = 10
    event_type: str | None = None
    older_than: dt.timedelta | None = None
    newer_than: dt.timedelta | None = None

    def accepts(self, candidate: Candidate, now: dt.datetime) -> bool:
        if self.event_type and candidate.reading.event_type != self.event_type:
            return False
        if candidate.when is not None:
            age = now - candidate.when
            if self.older_than is not None and age < self.older_than:
                return False
            if self.newer_than is not None and age > self.newer_than:
                return False
        return True


class Replayer:
    """Select, check and (when told to) replay dead letters of one DLQ."""

    def __init__(self, dlq: str, *, dead_letters: DeadLetterRepository, queues: SqsQueues,
                 invoice_states: InvoiceLookup, clock: Callable[[], dt.datetime], **_: Any) -> None:
        if dlq not in DLQ_SHORT_NAMES:
            raise NotADeadLetterQueue(dlq)
        self.dlq = dlq
        self.dead_letters = dead_letters
        self.queues = queues
        self.invoice_states = invoice_states
        self.clock = clock

    def candidates(self, filters: Filters, *, hold: bool = False) -> list[Candidate]:
        """Live queue messages first, then parked letters; de-duplicated by letter key, filtered, at most ``max``.

        ``hold=True`` keeps the peeked queue messages invisible so they can be deleted after a replay;
        call :meth:`release` for the ones not replayed.
        """
        now = self.clock()
        found: dict[str, Candidate] = {}
        limit = max(filters.max, 10)
        held = {"release": False, "visibility_seconds": hold_seconds(limit)} if hold else {"release": True}
        for letter in self.queues.peek(self.dlq, limit, **held):
            reading = read_body(letter.body)
            found.setdefault(letter_key(self.dlq, letter, reading),
                             Candidate("queue", letter_key(self.dlq, letter, reading), letter, reading, letter.sent_at))
        for record in self.dead_letters.parked(self.dlq, limit=max(filters.max * 5, 50)):
            letter = letter_from_record(record)
            found.setdefault(record["_id"], Candidate("audit", record["_id"], letter, read_body(letter.body),
                                                      aware_utc(record.get("decidedAt")), record))
        chosen = [c for c in found.values() if filters.accepts(c, now)][: filters.max]
        if hold:
            self.release([c for c in found.values() if c not in chosen])
        for candidate in chosen:
            self.check(candidate)
        return chosen

    def release(self, candidates: list[Candidate]) -> None:
        self.queues.release(self.dlq, [c.letter for c in candidates if c.origin == "queue"])

    def check(self, candidate: Candidate) -> None:
        """Set ``verdict`` to ``replay`` or to why not, without writing anything."""
        reading = candidate.reading
        source = source_queue_of(self.dlq, candidate.letter)
        if source is None:
            candidate.verdict, candidate.detail = NOT_REPLAYABLE, f"{self.dlq} has no source queue to replay to"
        elif reading.problem:
            candidate.verdict, candidate.detail = INVALID, reading.problem
        elif (invoice := self._invoice_state(reading)) is not None and invoice.events_published:
            candidate.verdict, candidate.detail = ALREADY_APPLIED, "this session is invoiced and its events published"
        elif (existing := self.dead_letters.get(f"replay:{candidate.key}")) and existing.get("status") == DONE:
            candidate.verdict, candidate.detail = ALREADY_REPLAYED, f"by {existing.get('operator')}"
        elif invoice is not None:
            candidate.verdict = REPLAY
            candidate.detail = f"to {source}: invoice stored, its events not yet published (billing resumes)"
        else:
            candidate.verdict, candidate.detail = REPLAY, f"to {source}"

    def _invoice_state(self, reading: Reading) -> InvoiceState | None:
        if reading.event_type == SESSION_ENDED and reading.session_id:
            return invoice_for(self.invoice_states, reading.session_id, reading.user_id)
        return None

    def execute(self, candidates: list[Candidate], operator: str) -> None:
        """Replay every candidate whose verdict is ``replay``; audit every attempt and its result."""
        for candidate in candidates:
            if candidate.verdict == REPLAY:
                self._replay_one(candidate, operator)
            else:
                self._audit_skip(candidate, operator)
        self.release([c for c in candidates if c.verdict != REPLAY or c.result.get("outcome") != "replayed"])

    def _replay_one(self, candidate: Candidate, operator: str) -> None:
        replay_key = f"replay:{candidate.key}"
        source = source_queue_of(self.dlq, candidate.letter)
        assert source is not None
        existing = self.dead_letters.claim(self._replay_record(replay_key, candidate, operator, source))
        if existing is not None and existing.get("status") == DONE:
            candidate.verdict, candidate.detail = ALREADY_REPLAYED, f"by {existing.get('operator')}"
            candidate.result = {"outcome": "skipped"}
            return
        attributes = {ATTR_REPLAY_COUNT: str(candidate.letter.replay_count + 1), ATTR_REDRIVE_COUNT: "0",
                      ATTR_SOURCE_QUEUE: source, "replayedBy": operator[:100]}
        message_id = self.queues.send(source, candidate.letter.body, attributes)
        if candidate.origin == "queue":
            self.queues.delete(self.dlq, candidate.letter)
        else:
            self.dead_letters.mark_replayed(candidate.key, self.clock(), replay_key)
        candidate.result = {"outcome": "replayed", "sentTo": source, "messageId": message_id}
        self.dead_letters.complete(replay_key, {"result": candidate.result, "completedAt": self.clock()})

    def _replay_record(self, key: str, candidate: Candidate, operator: str, target: str | None) -> dict[str, Any]:
        return {
            "_id": key, "kind": "replay", "queue": self.dlq, "replayOf": candidate.key,
            "messageId": candidate.letter.message_id, "eventType": candidate.reading.event_type,
            "businessKey": candidate.reading.business_key(), "operator": operator[:100], "target": target,
            "action": "replay", "reason": candidate.detail, "decidedAt": self.clock(),
        }

    def _audit_skip(self, candidate: Candidate, operator: str) -> None:
        key = f"replay-skip:{candidate.key}:{self.clock().isoformat()}"
        record = self._replay_record(key, candidate, operator, None)
        record.update(action=f"skip:{candidate.verdict}")
        candidate.result = {"outcome": "skipped"}
        self.dead_letters.claim(record)
        self.dead_letters.complete(key, {"result": candidate.result})
