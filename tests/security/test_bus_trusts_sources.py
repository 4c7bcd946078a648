"""The bus trusts sources, not names: a SESSION_ENDED from anyone but the Session Service is never queued.

Runs on moto with the rules the deploy step makes (``appsync/infra.py``), so a forged
source cannot bill anybody: it never reaches the billing queue.
"""

from __future__ import annotations

import json

SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}


def _put(aws, source: str, detail_type: str, detail: dict) -> None:
    answer = aws.client("events").put_events(Entries=[{
        "EventBusName": aws.settings.event_bus_name, "Source": source, "DetailType": detail_type,
        "Detail": json.dumps(detail)}])
    assert answer["FailedEntryCount"] == 0


def test_a_forged_source_never_reaches_the_billing_queue(aws):
    _put(aws, "attacker.anything", "SESSION_ENDED", SEED)
    _put(aws, "jucr.auth", "SESSION_ENDED", {**SEED, "sessionId": "11111111-1111-4111-8111-111111111111"})
    _put(aws, "jucr.session", "SESSION_ENDED", {**SEED, "sessionId": "22222222-2222-4222-8222-222222222222"})
    queued = [json.loads(m["Body"]) for m in aws.receive_all("billing")]
    assert [(e["source"], e["detail"]["sessionId"]) for e in queued] == \
        [("jucr.session", "22222222-2222-4222-8222-222222222222")]


def test_a_registration_counts_only_from_auth(aws):
    user = {"userId": SEED["userId"], "registeredAt": "2026-02-20T10:00:00Z"}
    _put(aws, "jucr.session", "USER_REGISTERED", user)
    _put(aws, "jucr.auth", "USER_REGISTERED", user)
    assert [json.loads(m["Body"])["source"] for m in aws.receive_all("wallets")] == ["jucr.auth"]
