"""The foundation's promise: the stack answers GraphQL, takes events, and pumps them."""

import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SEED = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
        "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
        "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}


def test_typename_answers_without_a_token(local_stack):
    assert local_stack.graphql("{ __typename }") == (200, {"data": {"__typename": "Query"}})


def test_protected_field_without_token_is_unauthorized(local_stack):
    status, body = local_stack.graphql("{ wallet { balance } }")
    assert status == 401
    assert body["errors"][0]["errorType"] == "Unauthorized"


def test_graphql_validation_errors_are_clear(local_stack):
    status, body = local_stack.graphql("{ nope }")
    assert status == 400
    assert body["errors"][0]["errorType"] == "ValidationError"
    assert "nope" in body["errors"][0]["message"]


def test_event_door_accepts_events_and_the_pump_delivers_them(local_stack):
    status, body = local_stack.put_event(dict(SEED, sessionId="11111111-1111-4111-8111-111111111111"))
    assert status == 202 and body["accepted"] is True
    local_stack.wait_for(lambda: any('"pump": "billing"' in line and '"detailType": "SESSION_ENDED"' in line
                                     for line in local_stack.logs().splitlines()), 30)


def test_event_door_refuses_what_is_not_an_event(local_stack):
    assert local_stack.put_event(["not", "an", "object"])[0] == 400
    assert local_stack.put_event({"no": "type"})[0] == 400
    status, body = local_stack._post("/local/events", b"{broken")
    assert status == 400


def test_poison_payload_is_accepted_by_the_door(local_stack):
    """Like EventBridge, the door does not validate payloads: consumers do."""
    status, _ = local_stack.put_event({"eventType": "SESSION_ENDED", "energyKwh": -5})
    assert status == 202


def test_cli_uses_the_running_stack(local_stack):
    result = local_stack.cli("settings")
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["core"]["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert settings["store"]["mongodb_uri"] == "***"


def test_cli_creates_every_index_idempotently(local_stack):
    first = local_stack.cli("indexes")
    assert first.returncode == 0, first.stderr
    names = json.loads(first.stdout)["indexes"]
    assert any(n.startswith("users.") for n in names)
    assert any(n.startswith("invoices.") for n in names)
    again = local_stack.cli("indexes")
    assert json.loads(again.stdout)["indexes"] == names


def test_the_schedule_runs_the_ocm_sync_at_start(local_stack):
    line = local_stack.wait_for(lambda: next((json.loads(x) for x in local_stack.logs().splitlines()
                                              if x.startswith('{"ts"') and '"schedule": "ocm_sync"' in x), None), 90)
    assert line["outcome"] == "ok", line
    assert line["result"]["processed"] > 0


def test_the_cli_shows_the_settings_the_stack_runs_with(local_stack):
    env = {k: v for k, v in local_stack.env.items() if k in ("PATH", "HOME", "JUCR_LOCAL_STACK_STATE")}
    done = subprocess.run([sys.executable, "-m", "chalicelib", "settings"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    # The stack's own values (devstack/run.py defaults and what the fixture set), not the code's defaults.
    assert (shown["billing"]["wallet_opening_balance"], shown["auth"]["bcrypt_cost"],
            shown["queue"]["sqs_backoff_base_seconds"]) == ("50.00", "4", "1")
    assert shown["store"]["mongodb_uri"] == "***"
