"""``make bench``: run every benchmark and rewrite the performance table in docs/performance.md.

Each benchmark runs as a subprocess (a fresh interpreter, its own embedded MongoDB
or local stack) and prints JSON, which is parsed here: the OCM sync at 100,000
records, billing through the real handler, the authorizer, the embedded store at
100,000 stations, the package (zip size, each function's init under the Lambda
emulator) and put-to-subscription latency. Added here: the ``-X importtime`` cost of
each Lambda's module chain. The table goes between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` in docs/performance.md; nothing else in that page is touched.

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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TABLE_PAGE = ROOT / "docs" / "performance.md"
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
    module = ".".join(Path(path).with_suffix("").parts)
    done = _run([sys.executable, "-m", module, *args], timeout)
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


# --- the table -------------------------------------------------------------------------------------------

# The lease design on FerretDB 1.24.2, measured by this bench on 2026-12-01 before the store changed.
OLD_BILLING = "68.4 events/s and 21 round trips per event on the lease design (FerretDB)"


def rows_ocm(result: dict[str, Any] | None, note: str, records: int) -> list[Row]:
    how = (f"`bench/bench_ocm_sync.py --records {records}`: `python -m chalicelib ocm-sync` against the stand-in "
           "API (synthetic feed from the fixture), embedded MongoDB (memory backend)")
    if not result:
        return [("OCM first sync", f"not measured ({note})", how)]
    memory = result.get("peak_rss_mb_by_records", {})
    return [
        ("OCM first sync", f"{result.get('records'):,} records in {result.get('worker_seconds')} s "
         f"({result.get('first_sync_http_requests')} HTTP requests)", how),
        ("OCM store round trips / 1,000 records", f"{result.get('round_trips_per_1000_first_sync')} first sync, "
         f"{result.get('round_trips_per_1000_resync')} unchanged re-sync ({result.get('resync_writes')} writes)",
         "pymongo `CommandListener` count, same run"),
        ("OCM change set", f"{result.get('change_set_updated')} of {result.get('change_set_records')} changed "
         f"records applied in {result.get('change_set_runs')} run ({result.get('change_set_seconds')} s)", "same run"),
        ("OCM worker peak memory", ", ".join(f"{mb} MB at {int(n):,}" for n, mb in sorted(memory.items(),
                                                                                        key=lambda i: int(i[0]))),
         "peak RSS of the sync process at two feed sizes: flat in the record count"),
    ]


def rows_billing(result: dict[str, Any] | None, note: str, events: int) -> list[Row]:
    how = (f"`bench/bench_billing.py --events {events}`: real handler through the SQS batch runner, batches of 10, "
           "embedded MongoDB, recording publisher (no bus); median of 5 runs")
    if not result:
        return [("billing events / s", f"not measured ({note})", how)]
    return [
        ("billing events / s", f"{result.get('billed_per_second')} first delivery, "
         f"{result.get('redelivered_per_second')} redelivery (was {OLD_BILLING})", how),
        ("billing store round trips / event", f"{result.get('store_round_trips_per_event')} first delivery, "
         f"{result.get('store_round_trips_per_redelivery')} redelivery (batches of 10; a batch of one: "
         f"{result.get('batch_of_one', {}).get('store_round_trips_per_event', 'n/a')})",
         "pymongo `CommandListener` count, same run"),
    ]


def rows_store(result: dict[str, Any] | None, note: str) -> list[Row]:
    if not result:
        return [("embedded MongoDB", f"not measured ({note})", "`bench/bench_store.py`")]
    stations = result.get("stations", 0)
    how = f"`bench/bench_store.py --stations {stations}`: station documents in bulks of 1,000, server RSS from /proc"
    memory, h2 = result.get("memory", {}), result.get("h2", {})
    return [(f"embedded MongoDB at {stations:,} stations",
             f"starts in {memory.get('start_seconds_empty')} s; memory backend {memory.get('rss_mb')} MB RSS; "
             f"H2 file {h2.get('file_mb')} MB, reopens in {h2.get('restart_seconds_with_data')} s", how)]


def rows_package(result: dict[str, Any] | None, note: str) -> list[Row]:
    how = ("`bench/bench_package.py`: `chalice package --stage prod`; each function started from the unzipped "
           "package under the Lambda Runtime Interface Emulator (INIT REPORT), median")
    if not result:
        return [("deployment package (prod)", f"not measured ({note})", how)]
    inits = result.get("functions", {})
    return [
        ("deployment package (prod)", f"{result.get('zip_bytes', 0) / 1e6:.2f} MB (SDK provided by the runtime)", how),
        ("function init under the emulator", ", ".join(f"{name} {ms} ms" for name, ms in sorted(inits.items())),
         "as above"),
    ]


def rows_realtime(result: dict[str, Any] | None, note: str) -> list[Row]:
    how = ("`bench/bench_realtime.py`: SESSION_ENDED put on the local bus until PAYMENT_COMPLETED reaches a gql "
           "subscriber over the real-time endpoint, local stack")
    if not result:
        return [("bus to subscription latency", f"not measured ({note})", how)]
    return [("bus to subscription latency", f"p50 {result.get('p50_ms')} ms, p95 {result.get('p95_ms')} ms, "
             f"p99 {result.get('p99_ms')} ms over {result.get('delivered')} of {result.get('sessions')} sessions",
             how)]


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
    text = TABLE_PAGE.read_text()
    # The markers count only on a line of their own (prose may mention them).
    pattern = re.compile(rf"^{re.escape(START)}$.*?^{re.escape(END)}$", re.S | re.M)
    if not pattern.search(text):
        return False
    TABLE_PAGE.write_text(pattern.sub(lambda _: block, text, count=1))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--no-readme", action="store_true", help="print the table, leave docs/performance.md alone")
    args = parser.parse_args(argv)
    tokens, events, records, stations, sessions, runs = ((300, 60, 5000, 5000, 20, 1) if args.quick else
                                                          (2000, 300, 100000, 100000, 200, 3))
    started = time.monotonic()
    rows: list[Row] = []

    print(f"[bench] OCM sync ({records} records)...", flush=True)
    ocm, note = bench_script("bench/bench_ocm_sync.py", ["--records", str(records)], 1200)
    rows += rows_ocm(ocm, note, records)
    print(f"[bench] billing ({events} events)...", flush=True)
    billing, note = bench_script("bench/bench_billing.py", ["--events", str(events)], 600)
    rows += rows_billing(billing, note, events)
    print(f"[bench] authorizer ({tokens} tokens)...", flush=True)
    auth, note = bench_script("bench/bench_authorizer.py", ["--tokens", str(tokens), "--import-runs", str(runs)], 300)
    rows += rows_authorizer(auth, note, tokens)
    print(f"[bench] embedded store ({stations} stations)...", flush=True)
    rows += rows_store(*bench_script("bench/bench_store.py", ["--stations", str(stations)], 900))
    print("[bench] package and cold starts under the emulator...", flush=True)
    rows += rows_package(*bench_script("bench/bench_package.py", ["--quick"] if args.quick else [], 900))
    print("[bench] real-time latency...", flush=True)
    rows += rows_realtime(*bench_script("bench/bench_realtime.py", ["--sessions", str(sessions)], 900))
    print("[bench] cold-start imports...", flush=True)
    rows += rows_cold({module: import_cost(module, runs) for module in LAMBDA_MODULES}, runs)

    meta = (f"Measured by `make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d} ({platform.machine()}, {os.cpu_count()} "
            f"CPUs, Python {platform.python_version()}; a shared machine, so read ratios and counts more than "
            f"times) in {time.monotonic() - started:.0f} s. Chaos run (faults on): see 'Proof under load and "
            "faults' in docs/performance.md.")
    block = render(rows, meta)
    print(block)
    if not args.no_readme:
        print("[bench] docs/performance.md table rewritten" if rewrite_readme(block) else
              "[bench] docs/performance.md has no bench markers; table printed only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
