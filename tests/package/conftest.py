"""The package suite: every function from ``deployment.zip``, under the Lambda emulator, against stand-ins.

One package build, one unzip into a clean folder, one moto_server, one OCM stand-in and the
worker's embedded MongoDB serve the whole suite (``xdist_group("package")`` keeps it on one
worker). Functions run with the prod stage's variables from ``sam.json``; only endpoints are local.
Missing tools (``make lambda-rie lambda-runtime``) skip the suite with the command to run; a
missing or stale package is rebuilt with the command ``make package`` runs.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack import lambdas
from devstack.package_stage import PackageStage
from devstack.stack_process import start_moto

SEED_SESSION = {"eventType": "SESSION_ENDED", "sessionId": "6fe27f6e-ff2d-4dda-9f86-3de70e1a4bbf",
                "userId": "0b1732fa-631a-4952-b6d6-2d586ed9dbf8", "stationId": "48f8fb15-814d-4e9d-97e1-d2caea2a162f",
                "energyKwh": 22.4, "durationMinutes": 58, "endedAt": "2026-02-21T14:31:00Z"}
ALL_FUNCTIONS = {"authorizer", "auth_resolver", "billing_resolver", "stations_resolver", "billing_consumer",
                 "wallet_opener", "reconcile_billing_dlq", "reconcile_wallets_dlq", "reconcile_ocm_sync_dlq",
                 "ocm_sync", "ocm_full_sweep"}


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> dict[str, Any]:
    """The prod package, unzipped into a clean folder (Lambda's /var/task), and its functions' specs."""
    missing = lambdas.missing_tools()
    if missing:
        pytest.skip(f"the Lambda emulator and runtime client are not built: {', '.join(missing)}")
    if lambdas.package_is_stale():
        lambdas.build_package()
    zip_path = lambdas.PACKAGE_DIR / "deployment.zip"
    task_root = lambdas.unpack(zip_path, tmp_path_factory.mktemp("package") / "task")
    return {"zip": zip_path, "task_root": task_root,
            "specs": lambdas.read_functions(lambdas.PACKAGE_DIR / "sam.json")}


@pytest.fixture(scope="session")
def stage(package, embedded_mongo, tmp_path_factory) -> PackageStage:
    """moto_server, the store and the OCM stand-in, provisioned for the prod stage's names."""
    from devstack.ocm_standin import start_standin

    logs = tmp_path_factory.mktemp("package-logs")
    moto = start_moto(logs / "moto.log")
    standin, _ = start_standin("127.0.0.1", 0)
    stage_env = package["specs"]["billing_consumer"].environment
    stage = PackageStage(stage_env=stage_env, moto_url=moto.url, mongo_uri=embedded_mongo.uri, ocm_url=standin.url,
                         standin=standin, log_dir=logs)
    try:
        stage.provision()
        yield stage
    finally:
        standin.shutdown()
        moto.stop()


@pytest.fixture(scope="session")
def functions(package, stage) -> lambdas.PackageFunctions:
    pool = lambdas.PackageFunctions(package["task_root"], package["specs"], stage.function_env(), stage.log_dir)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def store(stage):
    from pymongo import MongoClient

    client = MongoClient(stage.mongo_uri, tz_aware=True)
    yield client[stage.database]
    client.drop_database(stage.database)  # the worker's embedded store lives on for other tests
    client.close()


@pytest.fixture(scope="session")
def synced(functions, stage) -> dict[str, Any]:
    """One scheduled incremental sync from the package, shared by the tests that need stations."""
    return {"result": functions.invoke("ocm_sync", scheduled_event("jucr-prod-ocm_sync")),
            "published": stage.published()}


@pytest.fixture(scope="session")
def closed_port_url() -> str:
    """An endpoint nothing listens on: AWS unreachable for one function instance."""
    from devstack.embedded_mongo import free_port

    return f"http://127.0.0.1:{free_port()}"


# --- real-shaped events -------------------------------------------------------------------------------


def bus_event(detail: dict[str, Any], source: str = "jucr.session") -> str:
    """An SQS body as an EventBridge rule delivers it: the whole bus event."""
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail["eventType"],
                       "source": source, "account": "123456789012", "time": "2026-02-21T14:31:01Z",
                       "region": "eu-central-1", "resources": [], "detail": detail})


def session_ended(user_id: str, **over: Any) -> dict[str, Any]:
    return {**SEED_SESSION, "sessionId": str(uuid.uuid4()), "userId": user_id,
            "endedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"), **over}


def user_registered(user_id: str) -> dict[str, Any]:
    return {"eventType": "USER_REGISTERED", "userId": user_id, "registeredAt": "2026-02-20T10:00:00Z",
            "eventId": str(uuid.uuid4())}


def scheduled_event(rule: str) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its target."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "region": "eu-central-1", "resources": [f"arn:aws:events:eu-central-1:123456789012:rule/{rule}"],
            "detail": {}}


def authorizer_event(token: str, query: str = "query { me { id } }") -> dict[str, Any]:
    """AppSync's Lambda authorizer request."""
    return {"authorizationToken": token,
            "requestContext": {"apiId": "pkgsuite", "accountId": "123456789012", "requestId": str(uuid.uuid4()),
                               "queryString": query, "operationName": None, "variables": {}}}


def resolver_event(parent: str, field: str, arguments: dict[str, Any] | None = None,
                   resolver_context: dict[str, Any] | None = None) -> dict[str, Any]:
    """AppSync's direct Lambda resolver request (Lambda authorization: identity carries resolverContext)."""
    identity = {"resolverContext": resolver_context} if resolver_context is not None else None
    return {"arguments": arguments or {}, "identity": identity, "source": None,
            "request": {"headers": {"host": "pkgsuite.appsync-api.eu-central-1.amazonaws.com"}, "domainName": None},
            "info": {"fieldName": field, "parentTypeName": parent, "variables": {}, "selectionSetList": [],
                     "selectionSetGraphQL": ""},
            "prev": None, "stash": {}}


def failed_ids(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def log_of(functions: lambdas.PackageFunctions, name: str) -> str:
    return Path(functions.emulator(name).log_path).read_text(errors="replace")
