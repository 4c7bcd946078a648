"""Bench the OCM sync at real size: ``python -m chalicelib ocm-sync`` against the stand-in API.

    .venv/bin/python bench/bench_ocm_sync.py [--records 100000] [--memory-sizes 10000]
        [--change-set 1000] [--delisted 100] [--sweep-budget 20] [--mongodb-uri URI]

The stand-in (in this process, one thread) serves a synthetic feed of ``--records``
POIs: the 1,586 fixture records re-numbered 1..N, built page by page. The store is
an embedded mongo-java-server (memory backend) unless ``--mongodb-uri`` is given.
Every worker run is a separate process doing exactly what ``python -m chalicelib
ocm-sync`` does (``runpy``, as ``-m`` does), with a pymongo ``CommandListener``
registered first so every store command is counted, and its peak RSS read at exit.

Runs, in order: a first sync (no checkpoint: every record); an unchanged re-sync (a
full sweep, which reads every record again: 0 station writes, 0 removed); a change
set (``--change-set`` records edited upstream, then one incremental run); a full
sweep under ``--time-budget`` after ``--delisted`` POIs left the feed (invocations
until done, exactly those removed); and first syncs at ``--memory-sizes`` on fresh
databases, for peak memory against the record count. Progress goes to stderr, one
JSON object to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import MongoClient, monitoring  # noqa: E402

from devstack.ocm_standin import OcmStandIn, load_records, start_standin  # noqa: E402

WORKER_FLAG = "--as-worker"
WRITES = ("insert", "update", "delete")


class CommandCounter(monitoring.CommandListener):
    """Every command the worker sends, by name and collection: each one is a round trip."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        key = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
        self.counts[key] = self.counts.get(key, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def worker_probe(out_path: str, cli_args: list[str]) -> int:
    """In a fresh process: run ``python -m chalicelib <cli_args>`` and write what it cost to ``out_path``."""
    counter = CommandCounter()
    monitoring.register(counter)  # before the CLI builds its MongoClient, so no command is missed
    sys.argv = ["chalicelib", *cli_args]
    code = 0
    try:
        runpy.run_module("chalicelib", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    Path(out_path).write_text(json.dumps({"exit": code, "commands": counter.counts, "peak_rss_kb": peak_kb}))
    return code


class Bench:
    """One store, one stand-in, and worker processes pointed at them."""

    def __init__(self, uri: str, standin: OcmStandIn, page_size: int) -> None:
        self.uri, self.standin, self.page_size = uri, standin, page_size
        self.db_name = f"bench_ocm_{uuid.uuid4().hex[:8]}"

    def worker(self, *cli_args: str) -> dict[str, Any]:
        """Run the worker once; its payload, wall time, HTTP requests and store commands."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "OCM_", "AWS_", "JUCR_"))}
        env.update(MONGODB_URI=self.uri, MONGODB_DB=self.db_name, OCM_API_URL=self.standin.url,
                   OCM_PAGE_SIZE=str(self.page_size), JUCR_NO_LOCAL_STACK="1", AWS_DEFAULT_REGION="eu-central-1")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out_path = handle.name
        requests_before = self.standin.request_count
        began = time.perf_counter()
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, out_path,
                               "ocm-sync", "--no-publish", *cli_args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - began
        probe = json.loads(Path(out_path).read_text())
        os.unlink(out_path)
        if done.returncode not in (0, 3):
            raise RuntimeError(f"ocm-sync {' '.join(cli_args)} exited {done.returncode}: {done.stderr[-1500:]}")
        payload = json.loads(done.stdout.strip().splitlines()[-1])
        commands = probe["commands"]
        trips = sum(commands.values())
        writes = sum(n for k, n in commands.items() if k.split(" ")[0] in WRITES and k.endswith(" ocm_stations"))
        return {"payload": payload, "seconds": round(seconds, 2), "exit": done.returncode,
                "http_requests": self.standin.request_count - requests_before, "round_trips": trips,
                "round_trips_per_1000": round(trips / max(payload["processed"], 1) * 1000, 2),
                "station_writes": writes, "commands": commands, "peak_rss_mb": round(probe["peak_rss_kb"] / 1024, 1)}

    def drop(self) -> None:
        with MongoClient(self.uri) as client:
            client.drop_database(self.db_name)


def _say(line: str) -> None:
    print(f"[bench-ocm] {line}", file=sys.stderr, flush=True)


def _spread(count: int, records: int, offset: int = 0) -> list[int]:
    """``count`` ids spread evenly over 1..records, so every part of the feed is touched."""
    step = max(records // count, 1)
    return [1 + offset + i * step for i in range(min(count, records))]


def change_set(bench: Bench, count: int, records: int) -> dict[str, Any]:
    """Edit ``count`` POIs upstream, then one incremental run must write exactly those."""
    for ocm_id in _spread(count, records):
        bench.standin.change(ocm_id, mutate=lambda r: r["AddressInfo"].update(
            Title=f"{r['AddressInfo'].get('Title') or 'Site'} (renovated)"))
    return bench.worker()


def budgeted_sweep(bench: Bench, delisted: int, records: int, budget: float) -> dict[str, Any]:
    """Delist POIs, then run ``--full --time-budget`` invocations until one completes."""
    for ocm_id in _spread(delisted, records, offset=1):
        bench.standin.delist(ocm_id)
    runs = [bench.worker("--full", "--time-budget", str(budget))]
    while runs[-1]["exit"] == 3 and len(runs) < 50:
        runs.append(bench.worker("--full", "--time-budget", str(budget)))
    last = runs[-1]["payload"]
    return {"invocations": len(runs), "seconds": round(sum(r["seconds"] for r in runs), 2),
            "processed": sum(r["payload"]["processed"] for r in runs), "removed": last["removed"],
            "complete": last["complete"], "longest_invocation_seconds": max(r["seconds"] for r in runs)}


def memory_at(uri: str, standin: OcmStandIn, templates: list[dict], size: int, page_size: int) -> float:
    standin.set_records(templates, synthetic=size)
    bench = Bench(uri, standin, page_size)
    try:
        return bench.worker()["peak_rss_mb"]
    finally:
        bench.drop()


def run(args: argparse.Namespace, uri: str, store: str) -> dict[str, Any]:
    templates = load_records()
    standin, _ = start_standin("127.0.0.1", 0, records=templates, synthetic=args.records)
    bench = Bench(uri, standin, args.page_size)
    try:
        _say(f"first sync of {args.records} records ({store})...")
        first = bench.worker()
        _say(f"  {first['seconds']} s, {first['round_trips_per_1000']} round trips / 1,000; unchanged re-sync...")
        again = bench.worker("--full")
        _say(f"  {again['seconds']} s, {again['station_writes']} station writes; change set of {args.change_set}...")
        changed = change_set(bench, args.change_set, args.records)
        _say(f"  {changed['payload']['updated']} updated; sweep after {args.delisted} delisted, "
             f"--time-budget {args.sweep_budget}...")
        sweep = budgeted_sweep(bench, args.delisted, args.records, args.sweep_budget)
        _say(f"  {sweep['invocations']} invocations, {sweep['removed']} removed")
    finally:
        bench.drop()
    memory = {str(args.records): first["peak_rss_mb"]}
    for size in (s for s in args.memory_sizes if s != args.records):
        _say(f"peak memory of a first sync of {size} records...")
        memory[str(size)] = memory_at(uri, standin, templates, size, args.page_size)
    standin.shutdown()
    first_payload, again_payload, change_payload = first["payload"], again["payload"], changed["payload"]
    return {
        "store": store, "records": args.records, "page_size": args.page_size,
        "worker_seconds": first["seconds"], "first_sync_processed": first_payload["processed"],
        "first_sync_inserted": first_payload["inserted"], "first_sync_http_requests": first["http_requests"],
        "round_trips_per_1000_first_sync": first["round_trips_per_1000"], "first_sync_commands": first["commands"],
        "resync_seconds": again["seconds"], "resync_processed": again_payload["processed"],
        "resync_updated": again_payload["updated"], "resync_removed": again_payload["removed"],
        "resync_writes": again["station_writes"], "round_trips_per_1000_resync": again["round_trips_per_1000"],
        "change_set_records": args.change_set, "change_set_runs": 1, "change_set_seconds": changed["seconds"],
        "change_set_processed": change_payload["processed"], "change_set_updated": change_payload["updated"],
        "change_set_inserted": change_payload["inserted"], "change_set_http_requests": changed["http_requests"],
        "change_set_round_trips": changed["round_trips"],
        "sweep_delisted": args.delisted, "sweep_budget_seconds": args.sweep_budget,
        "sweep_invocations": sweep["invocations"], "sweep_seconds": sweep["seconds"],
        "sweep_longest_invocation_seconds": sweep["longest_invocation_seconds"],
        "sweep_processed": sweep["processed"], "sweep_removed": sweep["removed"],
        "peak_rss_mb_by_records": memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100000, help="size of the synthetic feed")
    parser.add_argument("--memory-sizes", type=lambda v: [int(s) for s in v.split(",") if s], default=[10000],
                        help="more sizes for the peak-memory comparison (the --records run is always one)")
    parser.add_argument("--change-set", type=int, default=1000)
    parser.add_argument("--delisted", type=int, default=100)
    parser.add_argument("--sweep-budget", type=float, default=20.0, help="--time-budget of each sweep invocation")
    parser.add_argument("--page-size", type=int, default=1000, help="OCM_PAGE_SIZE (1000-10000)")
    parser.add_argument("--mongodb-uri", default="")
    args = parser.parse_args(argv)
    server = None
    if args.mongodb_uri:
        uri, store = args.mongodb_uri, "mongodb"
    else:
        from devstack.embedded_mongo import EmbeddedMongo

        server = EmbeddedMongo(Path(tempfile.mkdtemp(prefix="bench-ocm-"))).start()
        uri, store = server.uri, "mongo-java-server 1.47.0 (memory backend)"
    try:
        result = run(args, uri, store)
    finally:
        if server:
            server.stop()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == WORKER_FLAG:
        raise SystemExit(worker_probe(sys.argv[2], sys.argv[3:]))
    raise SystemExit(main())
