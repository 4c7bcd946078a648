"""Bench the OCM sync worker's store path against a naive one-update_one-per-record sync.

    .venv/bin/python bench/bench_ocm_sync.py [--records 5000] [--naive-sample 1000]
                                             [--memory-sizes 1000,5000] [--mongodb-uri URI]

The default size is 5,000, not the issue's 100,000: on FerretDB every page's
``find`` by ``ocm_id`` scans the whole growing collection, so a 20,000-record
run did not finish in 20 minutes on the shared 2-core machine. Pass
``--records 100000 --mongodb-uri ...`` for the full figure on MongoDB.

Synthetic records are the 1,586 fixture POIs cycled with fresh ids and shifted
coordinates, generated page by page (never held as a whole). The page source
is in-process, so both sides measure mapping + store work, not HTTP. Without
``--mongodb-uri`` an embedded FerretDB is started in a temp directory.

Prints: worker time for N records; the naive sync's time for a sample,
extrapolated linearly to N (a lower bound on FerretDB, where each upsert by
``ocm_id`` scans a collection that keeps growing); store round trips per 1,000
records (first sync and unchanged re-sync); writes on the unchanged re-sync;
tracemalloc peak of a first sync at two sizes.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import MongoClient, monitoring  # noqa: E402

from chalicelib.ocm.mapping import map_record  # noqa: E402
from chalicelib.ocm.repository import INDEXES, MirrorRepository  # noqa: E402
from chalicelib.ocm.sync import SyncDeps, SyncOptions, run_sync  # noqa: E402
from chalicelib.store import ensure_indexes  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "ocm" / "ocm-poi-sample.json.gz"


def templates() -> list[dict]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def synthetic(ocm_id: int, base: list[dict]) -> dict:
    record = copy.deepcopy(base[ocm_id % len(base)])
    record["ID"] = ocm_id
    shift = (ocm_id // len(base)) * 0.001
    record["AddressInfo"]["Latitude"] = max(-89.0, min(89.0, record["AddressInfo"]["Latitude"] + shift))
    record["AddressInfo"]["Longitude"] = ((record["AddressInfo"]["Longitude"] + shift + 180) % 360) - 180
    return record


class SyntheticSource:
    """``/poi`` paging semantics (id order, greaterthanid, maxresults) over ids 1..n, built per page."""

    def __init__(self, n: int, base: list[dict]) -> None:
        self.n, self.base = n, base

    def fetch_page(self, *, after_id: int, page_size: int, modified_since=None) -> list[dict]:
        return [synthetic(i, self.base) for i in range(after_id + 1, min(self.n, after_id + page_size) + 1)]


class Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}

    def started(self, event) -> None:
        if event.command.get(event.command_name) == "ocm_stations":
            self.by_name[event.command_name] = self.by_name.get(event.command_name, 0) + 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def total(self, *names: str) -> int:
        return sum(self.by_name.get(n, 0) for n in names)


def fresh(uri: str, name: str, counter: Counter | None = None):
    client = MongoClient(uri, tz_aware=True, event_listeners=[counter] if counter else [])
    client.drop_database(name)
    db = client[name]
    ensure_indexes(db, INDEXES)
    return client, db


def sync(db, n: int, base: list[dict]) -> dict:
    deps = SyncDeps(SyntheticSource(n, base), MirrorRepository(db), None, lambda: dt.datetime.now(dt.UTC))
    return run_sync(deps, SyncOptions(page_size=1000, min_margin_seconds=0))


def bench_worker(uri: str, n: int, base: list[dict]) -> dict:
    counter = Counter()
    client, db = fresh(uri, "bench_ocm_worker", counter)
    began = time.perf_counter()
    first = sync(db, n, base)
    worker_s = time.perf_counter() - began
    first_trips = counter.total("find", "insert", "update", "delete")
    db["ocm_sync_state"].delete_many({})  # re-read everything, as a full overlap would
    counter.by_name.clear()
    began = time.perf_counter()
    again = sync(db, n, base)
    resync_s = time.perf_counter() - began
    out = {"records": n, "worker_seconds": round(worker_s, 2), "inserted": first["inserted"],
           "round_trips_per_1000_first_sync": round(first_trips / n * 1000, 2),
           "resync_seconds": round(resync_s, 2), "resync_updated": again["updated"],
           "resync_writes": counter.total("insert", "update", "delete"),
           "round_trips_per_1000_resync": round(counter.total("find", "insert", "update", "delete") / n * 1000, 2)}
    client.drop_database("bench_ocm_worker")
    client.close()
    return out


def bench_naive(uri: str, sample: int, base: list[dict]) -> float:
    """One upsert per record keyed by ocm_id: what a straightforward sync does."""
    client, db = fresh(uri, "bench_ocm_naive")
    stations = db["ocm_stations"]
    began = time.perf_counter()
    for i in range(1, sample + 1):
        poi = map_record(synthetic(i, base))
        stations.update_one({"ocm_id": poi.ocm_id}, {"$set": {**poi.body, "hash": poi.hash}}, upsert=True)
    seconds = time.perf_counter() - began
    client.drop_database("bench_ocm_naive")
    client.close()
    return seconds


def bench_memory(uri: str, n: int, base: list[dict]) -> float:
    client, db = fresh(uri, "bench_ocm_memory")
    tracemalloc.start()
    sync(db, n, base)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    client.drop_database("bench_ocm_memory")
    client.close()
    return peak / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000,
                        help="records for the worker (issue target: 100000; slow on FerretDB)")
    parser.add_argument("--naive-sample", type=int, default=1000, help="records the naive sync really writes")
    parser.add_argument("--memory-sizes", default="1000,5000")
    parser.add_argument("--mongodb-uri", default="")
    args = parser.parse_args(argv)
    base = templates()
    server = None
    uri = args.mongodb_uri
    if not uri:
        from devstack.embedded_mongo import EmbeddedMongo

        server = EmbeddedMongo(Path(tempfile.mkdtemp(prefix="bench-ocm-"))).start()
        uri = server.uri
    try:
        worker = bench_worker(uri, args.records, base)
        naive_s = bench_naive(uri, args.naive_sample, base)
        naive_extrapolated = naive_s / args.naive_sample * args.records
        sizes = [int(s) for s in args.memory_sizes.split(",")]
        memory = {str(s): round(bench_memory(uri, s, base), 1) for s in sizes}
    finally:
        if server:
            server.stop()
    result = {
        "store": "mongodb" if args.mongodb_uri else "ferretdb (embedded)",
        **worker,
        "naive_sample_records": args.naive_sample,
        "naive_sample_seconds": round(naive_s, 2),
        "naive_seconds_extrapolated": round(naive_extrapolated, 1),
        "speedup_vs_naive": round(naive_extrapolated / worker["worker_seconds"], 1),
        "peak_memory_mb_by_records": memory,
    }
    print(f"worker: {worker['records']} records in {worker['worker_seconds']} s "
          f"({worker['round_trips_per_1000_first_sync']} store round trips / 1,000 records)")
    print(f"naive:  {args.naive_sample} records in {naive_s:.2f} s -> {naive_extrapolated:.1f} s for "
          f"{args.records} (linear extrapolation of a sample; a lower bound on FerretDB)")
    print(f"speed-up: {result['speedup_vs_naive']}x (target >= 10x)")
    print(f"unchanged re-sync: {worker['resync_writes']} writes, {worker['resync_updated']} updated, "
          f"{worker['round_trips_per_1000_resync']} round trips / 1,000, {worker['resync_seconds']} s")
    print(f"peak memory (tracemalloc) of a first sync: {memory} MB")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
