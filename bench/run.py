"""``make bench``: run every benchmark with quick sizes and rewrite the README's performance table.

Each benchmark runs as a subprocess (a fresh interpreter, its own embedded FerretDB)
and prints JSON, which is parsed here. Added here: the cold-start import time of
each Lambda's module chain (``python -X importtime`` and the wall clock of a fresh
interpreter minus a bare one) and the size of the prod deployment package
(``chalice package --stage prod``). The table goes between ``<!-- bench:start -->``
and ``<!-- bench:end -->`` in README.md; nothing else in the README is touched.

Run: ``.venv/bin/python -m bench.run [--quick] [--no-readme]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
LAMBDA_MODULES = ("app", "chalicelib.auth.entry", "chalicelib.billing.entry", "chalicelib.ocm.entry",
                  "chalicelib.dlq.entry")

Row = tuple[str, str, str]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    env.update(extra)
    return env


def _run(args: list[str], timeout: float, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=_env(**extra), capture_output=True, text=True, timeout=timeout)


def _last_json(stdout: str) -> dict[str, Any]:
    """The benchmark's JSON result: the whole output, else its last JSON line."""
    try:
        return json.loads(stdout)
    except ValueError:
        for line in reversed(stdout.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
    raise ValueError("no JSON result in the output")


def bench_script(path: str, args: list[str], timeout: float) -> tuple[dict[str, Any] | None, str]:
    script = ROOT / path
    if not script.exists():
        return None, f"{path} not present"
    started = time.monotonic()
    done = _run([sys.executable, str(script), *args], timeout)
    if done.returncode != 0:
        return None, f"{path} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}"
    try:
        return _last_json(done.stdout), f"{time.monotonic() - started:.0f} s"
    except ValueError as exc:
        return None, f"{path}: {exc}"


# --- cold start and package size ----------------------------------------------------------------------

def import_cost(module: str, runs: int) -> dict[str, float]:
    """Cumulative ``-X importtime`` of ``module`` and fresh-interpreter wall time minus a bare interpreter."""
    cumulative, wall, bare = [], [], []
    pattern = re.compile(rf"\|\s*(\d+)\s*\|\s*{re.escape(module)}\s*$", re.MULTILINE)
    for _ in range(runs):
        report = _run([sys.executable, "-X", "importtime", "-c", f"import {module}"], 120).stderr
        match = pattern.search(report)
        if match:
            cumulative.append(int(match.group(1)) / 1000)
        started = time.perf_counter()
        _run([sys.executable, "-c", f"import {module}"], 120)
        wall.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _run([sys.executable, "-c", "pass"], 120)
        bare.append((time.perf_counter() - started) * 1000)
    return {"importtime_ms": round(statistics.median(cumulative), 1) if cumulative else float("nan"),
            "wall_ms": round(statistics.median(wall) - statistics.median(bare), 1)}


def package_size() -> tuple[int | None, str]:
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory() as tmp:
        done = _run([str(chalice), "package", "--stage", "prod", tmp], 600)
        zip_path = Path(tmp) / "deployment.zip"
        if done.returncode != 0 or not zip_path.exists():
            return None, (done.stderr or done.stdout).strip()[-300:]
        return zip_path.stat().st_size, "ok"


# --- the table -------------------------------------------------------------------------------------------

def rows_ocm(result: dict[str, Any] | None, note: str, records: int) -> list[Row]:
    how = (f"`bench/bench_ocm_sync.py --records {records}`: synthetic pages from the fixture, worker vs one "
           "`update_one` per record (naive timed on a sample, extrapolated linearly), embedded FerretDB")
    if not result:
        return [("OCM sync vs naive", f"not measured ({note})", how)]
    return [
        ("OCM sync speed-up vs naive", f"{result.get('speedup_vs_naive')}x "
         f"({result.get('records')} records in {result.get('worker_seconds')} s)", how),
        ("OCM store round trips / 1,000 records", f"{result.get('round_trips_per_1000_first_sync')} first sync, "
         f"{result.get('round_trips_per_1000_resync')} unchanged re-sync", "pymongo `CommandListener` count, same run"),
    ]


def rows_billing(result: dict[str, Any] | None, note: str, events: int) -> list[Row]:
    how = (f"`bench/bench_billing.py --events {events}`: real handler through the SQS batch runner, batches of 10, "
           "embedded FerretDB, recording publisher (no bus)")
    if not result:
        return [("billing events / s", f"not measured ({note})", how)]
    return [
        ("billing events / s", f"{result.get('billed_per_second')} first delivery, "
         f"{result.get('redelivered_per_second')} redelivery", how),
        ("billing store round trips / event", f"{result.get('store_round_trips_per_event')} first delivery, "
         f"{result.get('store_round_trips_per_redelivery')} redelivery", "pymongo `CommandListener` count, same run"),
    ]


def rows_authorizer(result: dict[str, Any] | None, note: str, tokens: int) -> list[Row]:
    how = f"`bench/bench_authorizer.py --tokens {tokens}`: EdDSA (Ed25519) verify + claims + deny-list, in process"
    if not result:
        return [("authorizer verify time", f"not measured ({note})", how)]
    verify, imported = result.get("verify", {}), result.get("import", {})
    return [
        ("authorizer verify time", f"{verify.get('verify_us_per_token')} µs / token "
         f"(forged refused in {verify.get('forged_refused_us_per_token')} µs)", how),
        ("authorizer import time", f"{imported.get('importtime_ms_median')} ms (`-X importtime`), "
         f"{imported.get('entry_wall_ms')} ms wall", "fresh interpreters, median; wall = minus a bare interpreter"),
    ]


def rows_cold(costs: dict[str, dict[str, float]], runs: int) -> list[Row]:
    how = (f"`python -X importtime -c 'import M'` cumulative µs of M, and wall of a fresh interpreter minus "
           f"`python -c pass`; median of {runs}")
    return [(f"cold-start import `{module}`", f"{cost['importtime_ms']} ms importtime, {cost['wall_ms']} ms wall",
             how if i == 0 else "as above")
            for i, (module, cost) in enumerate(costs.items())]


def render(rows: list[Row], meta: str) -> str:
    lines = [START, "", meta, "", "| metric | value | how measured |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {h} |".replace("\n", " ") for m, v, h in rows]
    lines += ["", END]
    return "\n".join(lines)


def rewrite_readme(block: str) -> bool:
    text = README.read_text()
    # The markers count only on a line of their own (prose may mention them).
    pattern = re.compile(rf"^{re.escape(START)}$.*?^{re.escape(END)}$", re.S | re.M)
    if not pattern.search(text):
        return False
    README.write_text(pattern.sub(lambda _: block, text, count=1))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--no-readme", action="store_true", help="print the table, leave README.md alone")
    args = parser.parse_args(argv)
    tokens, events, records, runs = (300, 60, 2000, 1) if args.quick else (2000, 300, 10000, 3)
    started = time.monotonic()
    rows: list[Row] = []

    print(f"[bench] OCM sync ({records} records)...", flush=True)
    ocm, note = bench_script("bench/bench_ocm_sync.py", ["--records", str(records), "--naive-sample",
                                                          str(max(200, records // 20)), "--memory-sizes", "2000"], 600)
    rows += rows_ocm(ocm, note, records)
    print(f"[bench] billing ({events} events)...", flush=True)
    billing, note = bench_script("bench/bench_billing.py", ["--events", str(events)], 600)
    rows += rows_billing(billing, note, events)
    print(f"[bench] authorizer ({tokens} tokens)...", flush=True)
    auth, note = bench_script("bench/bench_authorizer.py", ["--tokens", str(tokens), "--import-runs", str(runs)], 300)
    rows += rows_authorizer(auth, note, tokens)
    print("[bench] cold-start imports...", flush=True)
    rows += rows_cold({module: import_cost(module, runs) for module in LAMBDA_MODULES}, runs)
    print("[bench] chalice package --stage prod...", flush=True)
    size, note = package_size()
    rows.append(("deployment package (prod)", f"{size / 1e6:.2f} MB ({size:,} bytes)" if size else
                 f"not measured ({note})", "`chalice package --stage prod` into a temp dir, size of deployment.zip"))

    meta = (f"Measured by `make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d} ({platform.machine()}, {os.cpu_count()} "
            f"CPUs, Python {platform.python_version()}; a shared machine, so read ratios and counts more than "
            f"times) in {time.monotonic() - started:.0f} s. Chaos run (faults on): see 'Proof under load and "
            "faults' in README.md.")
    block = render(rows, meta)
    print(block)
    if not args.no_readme:
        print("[bench] README.md table rewritten" if rewrite_readme(block) else
              "[bench] README.md has no bench markers; table printed only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
