"""Authorizer cost: verify time per token and the cold-start import time of ``chalicelib.auth.entry``.

Run: ``.venv/bin/python -m bench.bench_authorizer [--tokens N]``. Prints one JSON
object: microseconds per verified token (accepted and refused), the import time
of the authorizer module measured two ways (``-X importtime`` and wall clock of a
fresh interpreter, minus a bare interpreter), and which heavy modules it
avoided importing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAVY = ("pymongo", "boto3", "botocore", "marshmallow", "aws_lambda_powertools", "chalicelib.auth.service")


def _python(code: str, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)


def import_times(runs: int) -> dict:
    """Import cost of the authorizer module, cold, in fresh interpreters."""
    cumulative = []
    for _ in range(runs):
        report = _python("import chalicelib.auth.entry", "-X", "importtime").stderr
        match = re.search(r"\|\s*(\d+)\s*\|\s*chalicelib\.auth\.entry\s*$", report, re.MULTILINE)
        cumulative.append(int(match.group(1)) / 1000 if match else float("nan"))

    def wall(code: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            _python(code)
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    bare, with_entry = wall("pass"), wall("import chalicelib.auth.entry")
    loaded = json.loads(_python("import sys, json, chalicelib.auth.entry; "
                                f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))").stdout)
    return {
        "importtime_ms_median": round(statistics.median(cumulative), 1),
        "interpreter_ms_median": round(bare, 1),
        "interpreter_plus_entry_ms_median": round(with_entry, 1),
        "entry_wall_ms": round(with_entry - bare, 1),
        "heavy_modules_loaded": loaded,
    }


def verify_times(count: int) -> dict:
    from chalicelib.auth.authorizer import AuthorizerConfig, DenyList, decide
    from chalicelib.auth.keys import KeyRing
    from chalicelib.auth.tokens import issue_access_token

    keys = KeyRing.generate()
    now = dt.datetime.now(dt.UTC)
    config = AuthorizerConfig(keys=keys, issuer="iss", audience="aud", cache_seconds=300,
                              deny_list=DenyList.parse("revoked-1,revoked-2:3"))
    tokens = [issue_access_token(keys, user_id=f"user-{i}", token_version=0, issuer="iss", audience="aud",
                                 ttl_seconds=900, now=now) for i in range(count)]
    forged = [issue_access_token(KeyRing.generate(), user_id="x", token_version=0, issuer="iss", audience="aud",
                                 ttl_seconds=900, now=now) for _ in range(min(count, 200))]

    def per_token(batch: list[str]) -> tuple[float, int]:
        started = time.perf_counter()
        accepted = sum(decide({"authorizationToken": t}, config, now)["isAuthorized"] for t in batch)
        return (time.perf_counter() - started) / len(batch) * 1e6, accepted

    accepted_us, accepted = per_token(tokens)
    refused_us, wrongly_accepted = per_token(forged)
    garbage_us, _ = per_token(["garbage"] * count)
    return {
        "tokens": count,
        "accepted": accepted,
        "verify_us_per_token": round(accepted_us, 1),
        "forged_refused_us_per_token": round(refused_us, 1),
        "forged_accepted": wrongly_accepted,
        "garbage_refused_us_per_token": round(garbage_us, 2),
        "tokens_per_second": int(1e6 / accepted_us),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--import-runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({"bench": "authorizer", "verify": verify_times(args.tokens),
                      "import": import_times(args.import_runs)}, indent=2))


if __name__ == "__main__":
    main()
