"""The embedded MongoDB itself: start time, memory and file size at 100,000 stations.

    .venv/bin/python bench/bench_store.py [--stations 100000]

Starts mongo-java-server twice per backend (memory, H2 file in a temp dir): once empty
(start time), then loads ``--stations`` station documents (the 1,586 fixture POIs
cycled with fresh ids, in unordered bulks of 1,000, with the mirror's ``ocm_id``
unique index), and reads the server's resident memory from ``/proc``. For H2 it stops
the server, reports the file size, starts it again on the same file and counts the
documents (the data survives a restart). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import InsertOne, MongoClient  # noqa: E402

from devstack.embedded_mongo import EmbeddedMongo  # noqa: E402
from devstack.ocm_standin import load_records  # noqa: E402

BATCH = 1000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def documents(count: int):
    """Station-shaped documents, generated batch by batch (never all held at once)."""
    base = load_records()
    for start in range(0, count, BATCH):
        batch = []
        for ocm_id in range(start + 1, min(count, start + BATCH) + 1):
            record = copy.deepcopy(base[ocm_id % len(base)])
            address = record.get("AddressInfo", {})
            lat, lon = address.get("Latitude", 0.0), address.get("Longitude", 0.0)
            batch.append({"_id": ocm_id, "ocm_id": ocm_id, "lat": lat, "lon": lon,
                          "position": {"type": "Point", "coordinates": [lon, lat]}, "raw": record})
        yield batch


def load(uri: str, count: int) -> float:
    with MongoClient(uri) as client:
        stations = client.bench.stations
        stations.create_index("ocm_id", unique=True)
        stations.create_index([("lat", 1), ("lon", 1)])
        started = time.perf_counter()
        for batch in documents(count):
            stations.bulk_write([InsertOne(doc) for doc in batch], ordered=False)
        return round(time.perf_counter() - started, 1)


def count(uri: str) -> int:
    with MongoClient(uri) as client:
        return client.bench.stations.count_documents({})


def measure(backend: str, stations: int, tmp: Path) -> dict:
    h2_file = tmp / "bench.mv.db" if backend == "h2" else None
    empty = EmbeddedMongo(tmp / "empty", h2_file=tmp / "empty.mv.db" if h2_file else None).start()
    empty.stop()
    server = EmbeddedMongo(tmp, h2_file=h2_file).start()
    try:
        result = {"start_seconds_empty": round(empty.started_in or 0, 2),
                  "load_seconds": load(server.uri, stations), "rss_mb": rss_mb(server.process.pid)}
    finally:
        server.stop()
    if h2_file:
        result["file_mb"] = round(h2_file.stat().st_size / 1e6, 1)
        again = EmbeddedMongo(tmp, h2_file=h2_file).start()
        try:
            result["restart_seconds_with_data"] = round(again.started_in or 0, 2)
            result["documents_after_restart"] = count(again.uri)
        finally:
            again.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--backends", default="memory,h2")
    args = parser.parse_args(argv)
    if args.stations < 1:
        parser.error("--stations must be at least 1")
    out: dict = {"stations": args.stations}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-store-{backend}-") as tmp:
            print(f"[bench-store] {backend}: {args.stations} stations...", file=sys.stderr, flush=True)
            out[backend] = measure(backend, args.stations, Path(tmp))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
