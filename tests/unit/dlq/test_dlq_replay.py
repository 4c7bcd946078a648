"""Replay checks and the ``dlq`` command's safety rails, with fakes of the SQS and audit ports."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import pytest

from chalicelib.billing.queries import InvoiceState
from chalicelib.dlq import cli
from chalicelib.dlq.letters import DeadLetter
from chalicelib.dlq.queues import DLQ_SHORT_NAMES, NotADeadLetterQueue
from chalicelib.dlq.replay import REPLAY, Filters, Replayer, hold_seconds
from tests.fakes import InMemoryDeadLetters, InvoiceStates

T0 = dt.datetime(2026, 2, 21, 15, 0, tzinfo=dt.UTC)
USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"
EVENTS_PENDING = InvoiceState(invoice_id="inv", user_id=USER, status="OPEN", events_published=False)
EVENTS_PUBLISHED = InvoiceState(invoice_id="inv", user_id=USER, status="PAID", events_published=True)


def session_id(n: int) -> str:
    return f"6fe27f6e-ff2d-4dda-9f86-{n:012d}"


def bus_body(n: int) -> str:
    detail = {"eventType": "SESSION_ENDED", "sessionId": session_id(n), "userId": USER,
              "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "energyKwh": 22.4, "durationMinutes": 58,
              "endedAt": "2026-02-21T14:31:00Z"}
    return json.dumps({"version": "0", "id": f"bus-{n}", "detail-type": "SESSION_ENDED", "source": "jucr.session",
                       "time": "2026-02-21T14:31:01Z", "detail": detail})


class Queue:
    """A DLQ holding ``count`` dead SESSION_ENDEDs; records every call in order, with the prompt."""

    def __init__(self, count: int, calls: list[tuple]) -> None:
        self.letters = [DeadLetter(f"m-{n}", bus_body(n), {}, f"rh-{n}", T0) for n in range(count)]
        self.calls = calls
        self.sent: list[str] = []
        self.deleted: list[str] = []

    def peek(self, short: str, limit: int, visibility_seconds: int = 20, release: bool = True) -> list[DeadLetter]:
        self.calls.append(("peek", short, release, visibility_seconds))
        return self.letters[:limit]

    def release(self, short: str, letters: list[DeadLetter]) -> None:
        self.calls.append(("release", short, len(letters)))

    def send(self, short: str, body: str, attributes: dict[str, str], delay_seconds: int = 0) -> str:
        self.sent.append(body)
        return f"s-{len(self.sent)}"

    def delete(self, short: str, letter: DeadLetter) -> None:
        self.deleted.append(letter.message_id)


def replayer(queue: Queue, invoices: InvoiceStates | None = None, dlq: str = "billing-dlq") -> Replayer:
    return Replayer(dlq, dead_letters=InMemoryDeadLetters(), queues=queue, invoice_states=invoices or InvoiceStates(),
                    clock=lambda: T0)


# --- finding 1: replay decides by whether the invoice's events were published ------------------

def test_replay_sends_a_session_whose_invoice_events_are_not_published_and_skips_a_published_one():
    queue = Queue(3, [])
    invoices = InvoiceStates({session_id(0): EVENTS_PENDING, session_id(1): EVENTS_PUBLISHED})
    chosen = replayer(queue, invoices).candidates(Filters(max=10))
    verdicts = {c.reading.session_id: c.verdict for c in chosen}
    assert verdicts == {session_id(0): REPLAY, session_id(1): "already-applied", session_id(2): REPLAY}
    pending = next(c for c in chosen if c.reading.session_id == session_id(0))
    assert "not yet published" in pending.detail


def test_executing_replays_the_unpublished_one_and_deletes_it_from_the_dlq():
    queue = Queue(2, [])
    invoices = InvoiceStates({session_id(0): EVENTS_PENDING, session_id(1): EVENTS_PUBLISHED})
    tool = replayer(queue, invoices)
    chosen = tool.candidates(Filters(max=10), hold=True)
    tool.execute(chosen, "oncall")
    assert [json.loads(b)["detail"]["sessionId"] for b in queue.sent] == [session_id(0)]
    assert queue.deleted == ["m-0"]


# --- finding 6: only dead-letter queues ------------------------------------------------------

@pytest.mark.parametrize("name", ["billing", "wallets", "nope"])
def test_the_cli_refuses_anything_but_a_dlq_and_lists_the_valid_ones(name):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        cli._queue(name)
    message = str(caught.value)
    assert "not a dead-letter queue" in message and "billing-dlq, wallets-dlq, ocm-sync-dlq" in message


def test_the_replayer_refuses_a_source_queue_without_peeking_it():
    calls: list[tuple] = []
    with pytest.raises(NotADeadLetterQueue):
        replayer(Queue(1, calls), dlq="billing")
    assert calls == []
    assert set(DLQ_SHORT_NAMES) == {"billing-dlq", "wallets-dlq", "ocm-sync-dlq"}
    assert all(cli._queue(name) == name for name in DLQ_SHORT_NAMES)


def test_audit_max_default_matches_its_help(capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert parser.parse_args(["dlq", "audit"]).max == 100
    assert parser.parse_args(["dlq", "list", "--queue", "billing-dlq"]).max == 10
    with pytest.raises(SystemExit):
        parser.parse_args(["dlq", "audit", "--help"])
    assert "(default 100)" in " ".join(capsys.readouterr().out.split())


# --- finding 7: confirm first, hold afterwards ------------------------------------------------

def replay_args(**over: Any) -> argparse.Namespace:
    base = {"queue": "billing-dlq", "max": 10, "event_type": None, "older_than": None, "newer_than": None,
            "execute": True, "yes": False, "operator": "oncall"}
    return argparse.Namespace(**{**base, **over})


@pytest.fixture
def wired(monkeypatch):
    calls: list[tuple] = []
    queue = Queue(7, calls)
    monkeypatch.setattr(cli, "_replayer", lambda args: replayer(queue))

    def ask(prompt: str) -> str:
        calls.append(("prompt", prompt))
        return answer["text"]

    answer = {"text": "y"}
    return queue, calls, ask, answer


def test_confirmation_is_asked_before_any_message_is_held(wired, capsys):
    queue, calls, ask, _ = wired
    assert cli.cmd_replay(replay_args(), ask=ask) == 0
    prompt_at = next(i for i, c in enumerate(calls) if c[0] == "prompt")
    holds = [i for i, c in enumerate(calls) if c[0] == "peek" and c[2] is False]
    assert holds and min(holds) > prompt_at, calls
    assert all(c[2] is True for c in calls[:prompt_at] if c[0] == "peek")  # looked, released at once
    [hold] = [calls[i] for i in holds]
    assert hold[3] >= hold_seconds(10) > 20  # long enough for the loop, not the old 20 s
    assert len(queue.sent) == 7 and len(queue.deleted) == 7
    assert json.loads(capsys.readouterr().out.splitlines()[0])["replayed"] == 7


def test_a_refusal_holds_nothing_and_sends_nothing(wired, capsys):
    queue, calls, ask, answer = wired
    answer["text"] = "n"
    assert cli.cmd_replay(replay_args(), ask=ask) == 1
    assert not [c for c in calls if c[0] == "peek" and c[2] is False]
    assert queue.sent == [] and queue.deleted == []
    assert json.loads(capsys.readouterr().out)["aborted"] is True


def test_more_messages_after_the_answer_than_confirmed_aborts_and_releases(wired, capsys):
    queue, calls, ask, _ = wired
    real_peek = queue.peek

    def growing(short: str, limit: int, visibility_seconds: int = 20, release: bool = True) -> list[DeadLetter]:
        if not release:  # three more arrived while the person was reading the prompt
            queue.letters += [DeadLetter(f"m-{n}", bus_body(n), {}, f"rh-{n}", T0) for n in range(7, 10)]
        return real_peek(short, limit, visibility_seconds, release)

    queue.peek = growing
    assert cli.cmd_replay(replay_args(), ask=ask) == 1
    assert queue.sent == [] and calls[-1] == ("release", "billing-dlq", 10)
    assert "were confirmed" in json.loads(capsys.readouterr().out)["message"]


def test_a_dry_run_never_holds(wired, capsys):
    queue, calls, ask, _ = wired
    assert cli.cmd_replay(replay_args(execute=False), ask=ask) == 0
    assert [c for c in calls if c[0] == "peek"] == [("peek", "billing-dlq", True, 20)]
    assert not [c for c in calls if c[0] == "prompt"] and queue.sent == []
