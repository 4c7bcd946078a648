import json

import pytest

from chalicelib import bootstrap
from chalicelib.events.publisher import EventBridgePublisher, OutgoingEvent, PublishError, batches

USER = "0b1732fa-631a-4952-b6d6-2d586ed9dbf8"


def _registered(i: int) -> OutgoingEvent:
    return OutgoingEvent("USER_REGISTERED", {"userId": USER, "registeredAt": "2026-02-21T14:31:00Z"},
                         event_id=f"00000000-0000-4000-8000-{i:012d}")


def test_publishes_through_the_bus_rule_to_the_queue(aws):
    publisher = bootstrap.publisher()
    sent = publisher.publish([_registered(i) for i in range(23)], correlation_id="corr-1")
    assert len(sent) == 23
    assert publisher.calls == 3  # 10 + 10 + 3
    bodies = [json.loads(m["Body"]) for m in aws.receive_all("wallets")]
    assert len(bodies) == 23
    assert {b["detail-type"] for b in bodies} == {"USER_REGISTERED"}
    assert {b["source"] for b in bodies} == {"jucr.auth"}
    assert all(b["detail"]["correlationId"] == "corr-1" for b in bodies)
    assert all(b["detail"]["schemaVersion"] == 1 for b in bodies)


def test_batches_respect_count_and_size():
    small = [{"Source": "s", "DetailType": "d", "Detail": "x" * 100, "EventBusName": "b"}] * 25
    assert [len(b) for b in batches(small)] == [10, 10, 5]
    big = [{"Source": "s", "DetailType": "d", "Detail": "x" * 100_000, "EventBusName": "b"}] * 5
    assert [len(b) for b in batches(big)] == [2, 2, 1]
    with pytest.raises(PublishError):
        batches([{"Source": "s", "DetailType": "d", "Detail": "x" * 300_000, "EventBusName": "b"}])


class _FlakyEvents:
    """Wraps the moto client: the first calls report one failed entry, as EventBridge may."""

    def __init__(self, real, failures: int) -> None:
        self.real, self.failures, self.seen = real, failures, []

    def put_events(self, Entries):  # noqa: N803 - boto3's name
        self.seen.append(len(Entries))
        if self.failures:
            self.failures -= 1
            ok = self.real.put_events(Entries=Entries[1:])
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}] + ok["Entries"]}
        return self.real.put_events(Entries=Entries)


def test_failed_entries_are_retried_not_dropped(aws):
    flaky = _FlakyEvents(aws.client("events"), failures=2)
    publisher = EventBridgePublisher(client=flaky, bus_name=aws.settings.core.event_bus_name, sleep=lambda s: None)
    publisher.publish([_registered(i) for i in range(3)])
    assert flaky.seen == [3, 1, 1]  # only the failed entry is re-sent
    assert len(aws.receive_all("wallets")) == 3


def test_persistent_failure_raises_instead_of_dropping(aws):
    flaky = _FlakyEvents(aws.client("events"), failures=99)
    publisher = EventBridgePublisher(client=flaky, bus_name=aws.settings.core.event_bus_name, sleep=lambda s: None,
                                     retries=2)
    with pytest.raises(PublishError) as err:
        publisher.publish([_registered(1)])
    assert "1 event(s) not accepted" in str(err.value)


class _Forgetful:
    """A put_events answer without per-entry results must not count as delivered."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def put_events(self, Entries):  # noqa: N803 - boto3's name
        self.calls += 1
        response = self.real.put_events(Entries=Entries)
        return {"FailedEntryCount": 0, "Entries": []} if self.calls == 1 else response


def test_an_answer_without_entry_results_is_retried(aws):
    forgetful = _Forgetful(aws.client("events"))
    publisher = EventBridgePublisher(client=forgetful, bus_name=aws.settings.core.event_bus_name, sleep=lambda s: None)
    publisher.publish([_registered(1), _registered(2)])
    assert forgetful.calls == 2
    assert len(aws.receive_all("wallets")) == 4  # at-least-once: the first copies landed too, same event ids
