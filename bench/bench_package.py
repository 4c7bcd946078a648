"""Size of the prod package and each function's cold start, measured under the Lambda emulator.

Each function is started ``--runs`` times in a fresh emulator on the unzipped ``deployment.zip``
(base Python, only the package and the runtime client on ``sys.path``, no bytecode written: Lambda's
``/var/task`` is read-only) against moto_server, the embedded store and the OCM stand-in, and given
a small real-shaped event. Reported per function (medians, milliseconds):

- ``functions``: Init Duration, the emulator's ``INIT REPORT`` (runtime start + ``import app``);
- ``first_invoke_ms`` / ``warm_invoke_ms``: Duration of the first and second invocation. app.py
  imports each domain inside its handler, so the first invocation carries those imports (and the
  first store and AWS connections): Lambda's cold start is Init + first invocation.

With ``--precompiled`` the same again with bytecode compiled into the unpacked package first
(``precompiled_*``): what shipping ``.pyc`` in the zip would save, since Lambda cannot write it.
With ``--without-sdk``, the package without the SDK and the SDK on the runtime's path (``without_sdk_*``).

Sizes: ``zip_bytes`` as built, ``zip_bytes_without_sdk`` without boto3/botocore and what only they
need (the Lambda Python runtime ships an SDK of its own version), ``zip_bytes_sdk_models_pruned``
keeping the pinned SDK but only the service models the runtime calls.

Run: ``.venv/bin/python bench/bench_package.py [--runs N] [--quick]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import sys
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack import lambdas  # noqa: E402
from devstack.embedded_mongo import EmbeddedMongo  # noqa: E402
from devstack.package_stage import PackageStage  # noqa: E402
from devstack.stack_process import start_moto  # noqa: E402

# boto3 and what nothing else in requirements.txt needs (jmespath stays: Powertools uses it).
SDK_TOP_LEVEL = ("boto3", "botocore", "s3transfer", "dateutil", "six.py", "python_dateutil", "six-")
# Service models the runtime's clients load (sqs, events, secretsmanager) plus the credential chain's.
USED_MODELS = ("sqs", "events", "secretsmanager", "sts", "sso", "sso-oidc")


def zip_variants(zip_path: Path) -> dict[str, int]:
    """Compressed bytes of the package as built and of the two leaner variants (same compression)."""
    full = without_sdk = pruned = 0
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            parts = info.filename.split("/")
            size = info.compress_size + 30 + len(info.filename)  # local header, as the zip stores it
            full += size
            if not parts[0].startswith(SDK_TOP_LEVEL):
                without_sdk += size
            is_model = parts[0] == "botocore" and len(parts) > 3 and parts[1] == "data"
            if not is_model or parts[2] in USED_MODELS:
                pruned += size
    overhead = zip_path.stat().st_size - full  # central directory and end record, about the same in each
    return {"zip_bytes": zip_path.stat().st_size, "zip_bytes_without_sdk": without_sdk + overhead,
            "zip_bytes_sdk_models_pruned": pruned + overhead}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def first_events(stage: PackageStage) -> dict[str, Any]:
    """One small real-shaped event per function: each reaches its domain's imports and the store or AWS."""
    user = {"userId": str(uuid.uuid4())}

    def resolver(field: str, arguments: dict | None = None) -> dict:
        return {"arguments": arguments or {}, "identity": {"resolverContext": user}, "source": None,
                "request": {"headers": {}}, "info": {"fieldName": field, "parentTypeName": "Query", "variables": {},
                                                     "selectionSetList": []}, "prev": None, "stash": {}}

    def poison(short: str) -> dict:
        return stage.sqs_event(short, [json.dumps({"version": "0", "id": str(uuid.uuid4()), "source": "bench",
                                                   "detail-type": "SESSION_ENDED", "time": _now(),
                                                   "detail": {"eventType": "SESSION_ENDED"}})])

    scheduled = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": "123456789012", "time": _now(), "region": "eu-central-1", "resources": [], "detail": {}}
    return {
        "authorizer": lambda: {"authorizationToken": "not-a-token", "requestContext": {"apiId": "bench"}},
        "auth_resolver": lambda: resolver("me"),
        "billing_resolver": lambda: resolver("wallet"),
        "stations_resolver": lambda: resolver("stationsNear", {"lat": 52.52, "lon": 13.40, "radiusKm": 5.0}),
        "billing_consumer": lambda: poison("billing"),
        "wallet_opener": lambda: poison("wallets"),
        "reconcile_billing_dlq": lambda: poison("billing-dlq"),
        "reconcile_wallets_dlq": lambda: poison("wallets-dlq"),
        "reconcile_ocm_sync_dlq": lambda: poison("ocm-sync-dlq"),
        "ocm_sync": lambda: scheduled,
        "ocm_full_sweep": lambda: scheduled,
    }


def cold_start(spec: lambdas.FunctionSpec, task_root: Path, env: dict[str, str], log: Path,
               event: Any, extra_path: tuple[Path, ...] = ()) -> tuple[float, float, float]:
    """(init, first invocation, second invocation) in ms, from a fresh emulator's report lines."""
    emulator = lambdas.Emulator(spec, task_root, env, log, extra_path=extra_path)
    try:
        for _ in range(2):
            with contextlib.suppress(lambdas.FunctionError):  # an error answer is still a measured invocation
                emulator.invoke(event)
        first, warm = emulator.durations_ms()[-2:]
        return emulator.init_ms() or float("nan"), first, warm
    finally:
        emulator.stop()
        log.unlink(missing_ok=True)


def measure(task_root: Path, specs: dict[str, lambdas.FunctionSpec], stage: PackageStage, runs: int,
            work: Path, extra_path: tuple[Path, ...] = ()) -> dict[str, dict[str, float]]:
    events = first_events(stage)
    out: dict[str, dict[str, float]] = {"init": {}, "first": {}, "warm": {}}
    for name in sorted(specs):
        samples = [cold_start(specs[name], task_root, stage.function_env(), work / f"{name}.log", events[name](),
                              extra_path) for _ in range(runs)]
        for key, values in zip(("init", "first", "warm"), zip(*samples, strict=True), strict=True):
            out[key][name] = round(statistics.median(values), 1)
    return out


def split_sdk(task_root: Path, sdk_dir: Path) -> None:
    """Move the SDK out of an unpacked package into ``sdk_dir`` (where the Lambda runtime keeps its own)."""
    sdk_dir.mkdir(parents=True)
    for entry in task_root.iterdir():
        if entry.name.startswith(SDK_TOP_LEVEL):
            entry.rename(sdk_dir / entry.name)


def precompiled(task_root: Path, specs: dict[str, lambdas.FunctionSpec], stage: PackageStage, runs: int,
                work: Path) -> dict[str, Any]:
    """Cold starts with every module's bytecode already there; unchecked-hash so unzip times cannot stale it."""
    import compileall
    import py_compile

    compileall.compile_dir(str(task_root), quiet=1, workers=2,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    pyc = sum(p.stat().st_size for p in task_root.rglob("*.pyc"))
    timed = measure(task_root, specs, stage, runs, work)
    for cache in task_root.rglob("__pycache__"):
        for compiled in cache.iterdir():
            compiled.unlink()
    return {"precompiled_pyc_bytes": pyc, "precompiled_functions": timed["init"],
            "precompiled_first_invoke_ms": timed["first"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts per function (median)")
    parser.add_argument("--quick", action="store_true", help="one cold start per function")
    parser.add_argument("--without-sdk", action="store_true",
                        help="also time the package without the SDK, the SDK on the runtime's path")
    parser.add_argument("--precompiled", action="store_true", help="also time it with bytecode compiled in")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    missing = lambdas.missing_tools()
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    if lambdas.package_is_stale():
        lambdas.build_package()
    zip_path = lambdas.PACKAGE_DIR / "deployment.zip"
    specs = lambdas.read_functions(lambdas.PACKAGE_DIR / "sam.json")
    result: dict[str, Any] = zip_variants(zip_path)
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        work = Path(tmp)
        from devstack.ocm_standin import start_standin

        mongo = EmbeddedMongo(work / "mongo").start()
        moto = start_moto(work / "moto.log")
        standin, _ = start_standin("127.0.0.1", 0)
        try:
            stage = PackageStage(stage_env=specs["billing_consumer"].environment, moto_url=moto.url,
                                 mongo_uri=mongo.uri, ocm_url=standin.url, standin=standin, log_dir=work)
            stage.provision()
            task_root = lambdas.unpack(zip_path, work / "task")
            timed = measure(task_root, specs, stage, runs, work)
            result.update(functions=timed["init"], first_invoke_ms=timed["first"], warm_invoke_ms=timed["warm"])
            if args.precompiled:
                result.update(precompiled(task_root, specs, stage, runs, work))
            if args.without_sdk:
                split_sdk(task_root, work / "runtime-sdk")
                lean = measure(task_root, specs, stage, runs, work, extra_path=(work / "runtime-sdk",))
                result.update(without_sdk_functions=lean["init"], without_sdk_first_invoke_ms=lean["first"])
        finally:
            standin.shutdown()
            moto.stop()
            mongo.stop()
    result["runs"] = runs
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
