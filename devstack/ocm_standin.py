"""A stand-in OpenChargeMap API: ``/v3/poi`` (and ``/poi``) over a set of records.

Used by the tests, the benchmark and the local stack (no internet, no key). It
follows the real API's parameter semantics as far as the mirror depends on them:
``X-API-Key`` header or ``key`` parameter when a key is configured (401
otherwise); ``maxresults`` (default 100, capped at ``max_page``); ``sortby=id_asc``
or ``modified_asc`` (default: newest id first); ``greaterthanid``;
``modifiedsince`` on ``DateLastStatusUpdate`` (an unparseable value is silently
ignored, as OCM does); ``countrycode`` (ISO codes, via ``CountryID``). Other
parameters are accepted; records are served as stored (the fixture is compact).

Real size without a real download: with ``synthetic=N`` (``--records N``, or
``LOCAL_OCM_RECORDS`` for the local stack) it serves ids 1..N, each a copy of a
fixture record re-numbered and nudged north-east by 0.001° per pass through the
fixture (so copies do not pile up on one spot). Records are built when a page
asks for them, never held as a whole: 100,000 cost the stand-in ~4 MB of ids.

Test hooks (thread-safe): ``fail_next``, ``throttle_next``, ``change``, ``delist``,
``relist``, ``set_records``, ``ids``, ``record``, and the request log/counter.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import datetime as dt
import gzip
import json
import os
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.timestamps import parse_utc

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORDS = PROJECT_ROOT / "tests" / "fixtures" / "ocm" / "ocm-poi-sample.json.gz"
SYNTHETIC_UUIDS = uuid.UUID("5b0f3c52-8d5e-4e0a-9a57-2f6f1c3e9d10")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def load_records(path: str | Path | None = None) -> list[dict[str, Any]]:
    path = Path(path or DEFAULT_RECORDS)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _parse_since(value: str) -> dt.datetime | None:
    return parse_utc(value.strip())  # a padded value (a hand-typed query) is still read


def _record_time(record: dict[str, Any]) -> dt.datetime:
    return _parse_since(str(record.get("DateLastStatusUpdate") or "")) or _EPOCH


def synthesize(templates: list[dict[str, Any]], ocm_id: int) -> dict[str, Any]:
    """Record ``ocm_id`` of a synthetic feed: the same answer every time, for any process."""
    base = templates[(ocm_id - 1) % len(templates)]
    shift = ((ocm_id - 1) // len(templates)) * 0.001
    address = dict(base["AddressInfo"], ID=ocm_id)
    address["Latitude"] = max(-89.0, min(89.0, address["Latitude"] + shift))
    address["Longitude"] = ((address["Longitude"] + shift + 180) % 360) - 180
    # Shallow copies share nested lists with the template: nothing here mutates them,
    # and :meth:`OcmStandIn.change` deep-copies before an edit.
    return {**base, "ID": ocm_id, "UUID": str(uuid.uuid5(SYNTHETIC_UUIDS, str(ocm_id))).upper(),
            "AddressInfo": address}


class OcmStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], records: list[dict[str, Any]], api_key: str | None = None,
                 max_page: int = 10000, synthetic: int | None = None) -> None:
        super().__init__(address, _Handler)
        self.api_key = api_key
        self.max_page = max_page
        self.lock = threading.Lock()
        self.faults: deque[tuple[int, dict[str, str], bytes]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.set_records(records, synthetic=synthetic)

    # --- test hooks --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v3"

    @property
    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def set_records(self, records: list[dict[str, Any]], synthetic: int | None = None) -> None:
        """Serve ``records``; with ``synthetic`` they are the templates of ids 1..synthetic instead."""
        valid = [r for r in records if isinstance(r, dict) and isinstance(r.get("ID"), int)]
        with self.lock:
            self.extra: list[Any] = [r for r in records if not (isinstance(r, dict) and isinstance(r.get("ID"), int))]
            self.templates = sorted(valid, key=lambda r: r["ID"]) if synthetic else []
            self.template_times = [_record_time(r) for r in self.templates]
            self.synthetic = synthetic or 0
            self.stored = {} if synthetic else {r["ID"]: r for r in valid}
            self.times = {i: _record_time(r) for i, r in self.stored.items()}
            # Sorted live ids; replaced, never mutated, so a page being served keeps a stable view.
            self.live = list(range(1, self.synthetic + 1)) if synthetic else sorted(self.stored)

    def ids(self) -> list[int]:
        with self.lock:
            return list(self.live)

    def record(self, ocm_id: int) -> dict[str, Any]:
        with self.lock:
            return self._record(ocm_id)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next ``count`` requests answer ``status`` (e.g. 500, 503)."""
        with self.lock:
            self.faults.extend((status, {}, b'{"error":"injected"}') for _ in range(count))

    def throttle_next(self, count: int = 1, retry_after: int = 1) -> None:
        """The next ``count`` requests answer 429 with ``Retry-After``."""
        with self.lock:
            self.faults.extend((429, {"Retry-After": str(retry_after)}, b"rate limited") for _ in range(count))

    def change(self, ocm_id: int, mutate: Any = None, touch: bool = True, **fields: Any) -> dict[str, Any]:
        """Edit a record (``fields`` set at top level, or a ``mutate(record)`` callable).

        With ``touch`` the record's ``DateLastStatusUpdate`` becomes now, as OCM does on an edit.
        """
        with self.lock:
            record = copy.deepcopy(self._record(ocm_id))
            record.update(fields)
            if mutate:
                mutate(record)
            self._store(record, touch)
            return record

    def delist(self, ocm_id: int) -> dict[str, Any]:
        with self.lock:
            record = self._record(ocm_id)
            self.stored.pop(ocm_id, None)
            self.live = [i for i in self.live if i != ocm_id]
            return record

    def relist(self, record: dict[str, Any], touch: bool = False) -> None:
        with self.lock:
            record = copy.deepcopy(record)
            self._store(record, touch)

    def _record(self, ocm_id: int) -> dict[str, Any]:
        """Caller holds the lock; KeyError for an id that is not listed."""
        if ocm_id in self.stored:
            return self.stored[ocm_id]
        position = bisect.bisect_left(self.live, ocm_id)
        if not (self.synthetic and position < len(self.live) and self.live[position] == ocm_id):
            raise KeyError(ocm_id)
        return synthesize(self.templates, ocm_id)

    def _store(self, record: dict[str, Any], touch: bool) -> None:
        """Caller holds the lock; ``touch`` stamps the edit time as OCM does."""
        if touch:
            record["DateLastStatusUpdate"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ocm_id = record["ID"]
        self.stored[ocm_id] = record
        self.times[ocm_id] = _record_time(record)
        position = bisect.bisect_left(self.live, ocm_id)
        if position == len(self.live) or self.live[position] != ocm_id:
            self.live = [*self.live[:position], ocm_id, *self.live[position:]]

    def _time(self, ocm_id: int) -> dt.datetime:
        if ocm_id in self.times:
            return self.times[ocm_id]
        return self.template_times[(ocm_id - 1) % len(self.templates)]

    # --- the API -----------------------------------------------------------------------------
    def next_fault(self) -> tuple[int, dict[str, str], bytes] | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def select(self, params: dict[str, str]) -> list[Any]:
        since = _parse_since(params["modifiedsince"]) if "modifiedsince" in params else None
        wanted = {c.strip().upper() for c in params.get("countrycode", "").split(",") if c.strip()}
        after = _int(params.get("greaterthanid"), None)
        limit = min(max(_int(params.get("maxresults"), 100), 1), self.max_page)
        sortby = params.get("sortby", "")
        with self.lock:
            if sortby == "id_asc":
                # The mirror's path: walk the sorted ids from greaterthanid and stop at a full page.
                start = bisect.bisect_right(self.live, after) if after is not None else 0
                candidates = (self.live[p] for p in range(start, len(self.live)))
                records = self._matching(candidates, since, wanted, limit)
            else:
                ids = [i for i in self.live if after is None or i > after]
                records = self._matching(ids, since, wanted, None)
                if sortby == "modified_asc":
                    records.sort(key=lambda r: (_record_time(r), r["ID"]))
                else:
                    records.sort(key=lambda r: r["ID"], reverse=True)
            extra = list(self.extra)
        return (records + extra)[:limit]

    def _matching(self, ids: Any, since: dt.datetime | None, wanted: set[str], limit: int | None) -> list[dict]:
        from chalicelib.ocm.reference import country_code

        out: list[dict[str, Any]] = []
        for ocm_id in ids:
            if since is not None and self._time(ocm_id) < since:
                continue
            record = self._record(ocm_id)
            if wanted and country_code((record.get("AddressInfo") or {}).get("CountryID")) not in wanted:
                continue
            out.append(record)
            if limit is not None and len(out) >= limit:
                break
        return out


def _int(value: str | None, default: Any) -> Any:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _Handler(BaseHTTPRequestHandler):
    server: OcmStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own logs
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        params = {k.lower(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.server.lock:
            self.server.requests.append({"path": parts.path, "params": params,
                                         "headers": {k.lower(): v for k, v in self.headers.items()}})
        if parts.path.rstrip("/") not in ("/v3/poi", "/poi"):
            return self._send(404, {}, b'{"error":"not found"}')
        key = self.headers.get("X-API-Key") or params.get("key")
        if self.server.api_key and key != self.server.api_key:
            return self._send(401, {}, b"You must specify a valid API key")
        fault = self.server.next_fault()
        if fault:
            return self._send(*fault)
        body = json.dumps(self.server.select(params), separators=(",", ":")).encode()
        return self._send(200, {"Content-Type": "application/json"}, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_standin(host: str = "127.0.0.1", port: int = 0, records_path: str | Path | None = None,
                  api_key: str | None = None, records: list[dict[str, Any]] | None = None,
                  max_page: int = 10000, synthetic: int | None = None) -> tuple[OcmStandIn, threading.Thread]:
    """Serve in a daemon thread; ``server.url`` is the base URL (``.../v3``); ``server.shutdown()`` stops it.

    Given no records and no ``synthetic`` count, ``LOCAL_OCM_RECORDS`` (if set) asks for a
    synthetic feed of that size, so ``make run`` can be tried at real size without code changes.
    """
    if synthetic is None and records is None and records_path is None and os.environ.get("LOCAL_OCM_RECORDS"):
        synthetic = int(os.environ["LOCAL_OCM_RECORDS"])
    server = OcmStandIn((host, port), records if records is not None else load_records(records_path),
                        api_key=api_key, max_page=max_page, synthetic=synthetic)
    thread = threading.Thread(target=server.serve_forever, name="ocm-standin", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.ocm_standin [--port P] [--records N] [--api-key K]``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m devstack.ocm_standin", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--records", type=int, default=None, help="N synthetic records (default: the fixture)")
    parser.add_argument("--api-key", default=None, help="require this X-API-Key")
    args = parser.parse_args(argv)
    server, thread = start_standin("127.0.0.1", args.port, api_key=args.api_key, synthetic=args.records)
    print(json.dumps({"url": server.url, "records": len(server.ids())}), flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
