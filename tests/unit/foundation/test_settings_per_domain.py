"""Each Lambda validates only the settings it uses: one domain's bad value stops that domain alone.

The static half: one variable belongs to one section, and docs/settings.md lists exactly the
variables the sections declare. The running half: with a malformed tariff and a malformed OCM
page size in the environment, the authorizer and the auth resolver (through ``app.py``, as Lambda
calls them) still work, while billing's consumer refuses to start naming the tariff variable.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from chalicelib import bootstrap
from chalicelib.config import ConfigError, load_section
from chalicelib.sections import SECTIONS, all_variables
from devstack.lambda_context import LocalLambdaContext
from devstack.pump import lambda_record

ROOT = Path(__file__).resolve().parents[3]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
BROKEN = {"TARIFF_VAT_RATE": "19", "OCM_PAGE_SIZE": "5"}
USER = {"email": "sections@example.com", "name": "Sam Section", "password": "correct horse battery",
        "vehicle": {"brand": "Volkswagen", "model": "ID.3", "batteryCapacity": 58.0}}


# --- static: one variable, one section; the doc lists them all ------------------------------------

def test_each_variable_belongs_to_exactly_one_section():
    repeated = [env for env, count in Counter(v.env for v in all_variables()).items() if count > 1]
    assert repeated == []
    assert len({cls.name for cls in SECTIONS}) == len(SECTIONS)  # and each section has a name of its own


def _documented_variables() -> set[str]:
    """Every ``VARIABLE`` in the first column of a table row of docs/settings.md."""
    names: set[str] = set()
    for line in SETTINGS_DOC.read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1]))
    return names


def test_the_settings_doc_lists_exactly_the_variables_of_the_sections():
    declared = {v.env for v in all_variables()}
    documented = _documented_variables()
    assert len(declared) > 50  # the derivation found the sections (an empty set would make this vacuous)
    assert sorted(declared - documented) == [], "declared but not in docs/settings.md"
    assert sorted(documented - declared) == [], "in docs/settings.md but in no section"


def test_the_settings_doc_says_which_section_holds_each_variable():
    """Each variable's row sits under the heading of its section (``### `core` ...``)."""
    section_of = {v.env: v.section for v in all_variables()}
    current = None
    misplaced = []
    for line in SETTINGS_DOC.read_text().splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            current = heading.group(1)
        elif line.startswith("|") and len(line.split("|")) > 2:
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]):
                if name in section_of and section_of[name] != current:
                    misplaced.append(f"{name} under {current}, declared in {section_of[name]}")
    assert misplaced == []


# --- running: a bad billing or OCM value leaves auth alone ----------------------------------------

@pytest.fixture
def broken(aws, monkeypatch):
    """moto and the store as every integration test has them, plus a malformed tariff and page size."""
    from chalicelib.billing.settings import BillingSettings
    from chalicelib.ocm.settings import OcmSettings

    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    # The environment really is broken for the domains that read these.
    with pytest.raises(ConfigError, match="TARIFF_VAT_RATE"):
        load_section(BillingSettings)
    with pytest.raises(ConfigError, match="OCM_PAGE_SIZE"):
        load_section(OcmSettings)
    yield aws
    bootstrap.reset()


def _field(parent: str, name: str, arguments: dict | None = None, caller: dict | None = None) -> dict:
    return {"arguments": arguments or {}, "identity": {"resolverContext": caller} if caller else None,
            "source": None, "request": {"headers": {}}, "prev": None, "stash": {},
            "info": {"fieldName": name, "parentTypeName": parent, "variables": {}, "selectionSetList": []}}


def test_the_authorizer_and_the_auth_resolver_serve_while_billing_refuses_to_start(broken):
    import app

    registered = app.auth_resolver(_field("Mutation", "register", {"input": USER}), LocalLambdaContext("auth_resolver"))
    logged_in = app.auth_resolver(_field("Mutation", "login", {"input": {"email": USER["email"],
                                                                         "password": USER["password"]}}),
                                  LocalLambdaContext("auth_resolver"))
    assert logged_in["user"]["id"] == registered["user"]["id"]

    verdict = app.authorizer({"authorizationToken": logged_in["accessToken"], "requestContext": {}},
                             LocalLambdaContext("authorizer"))
    assert verdict["isAuthorized"] is True
    caller = verdict["resolverContext"]
    me = app.auth_resolver(_field("Query", "me", caller=caller), LocalLambdaContext("auth_resolver"))
    assert me["email"] == USER["email"]

    with pytest.raises(ConfigError) as refused:
        app.billing_consumer({"Records": [_session_record(broken, caller["userId"])]},
                             LocalLambdaContext("billing_consumer"))
    assert "TARIFF_VAT_RATE='19' is invalid" in str(refused.value)
    assert "OCM_PAGE_SIZE" not in str(refused.value)  # billing does not read the sync's settings


def _session_record(aws, user_id: str) -> dict:
    body = json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "SESSION_ENDED",
                       "source": "jucr.session", "account": "123456789012", "time": "2026-02-21T14:31:01Z",
                       "region": "eu-central-1", "resources": [],
                       "detail": {"sessionId": str(uuid.uuid4()), "userId": user_id, "energyKwh": 10.0,
                                  "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f", "durationMinutes": 30,
                                  "endedAt": "2026-02-21T14:30:00Z"}})
    sqs, url = aws.client("sqs"), aws.queue_url("billing")
    sqs.send_message(QueueUrl=url, MessageBody=body)
    (message,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return lambda_record(message, arn, "eu-central-1")
