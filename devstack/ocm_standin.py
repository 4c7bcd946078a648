"""A stand-in OpenChargeMap API: ``/v3/poi`` (and ``/poi``) over a list of records.

Used by the tests and by the local stack (no internet, no key). It follows the
real API's parameter semantics as far as the mirror depends on them:

- ``X-API-Key`` header or ``key`` parameter required when a key is configured
  (401 otherwise);
- ``maxresults`` (default 100, capped at ``max_page``), ``sortby=id_asc`` or
  ``modified_asc`` (default: newest id first), ``greaterthanid``;
- ``modifiedsince`` keeps records whose ``DateLastStatusUpdate`` >= the value;
  an unparseable value is silently ignored, as OCM does;
- ``countrycode`` (comma-separated ISO codes, via each record's ``CountryID``);
  ``compact``/``verbose``/``opendata``/``output``/``client`` accepted (records are
  served as stored: the recorded fixture is the compact form).

Test hooks (thread-safe): :meth:`OcmStandIn.fail_next`, :meth:`throttle_next`,
:meth:`change`, :meth:`delist`, :meth:`relist`, :meth:`set_records`, and the
request log/counter.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECORDS = PROJECT_ROOT / "tests" / "fixtures" / "ocm" / "ocm-poi-sample.json.gz"


def load_records(path: str | Path | None = None) -> list[dict[str, Any]]:
    path = Path(path or DEFAULT_RECORDS)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _parse_since(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record_time(record: dict[str, Any]) -> dt.datetime:
    parsed = _parse_since(str(record.get("DateLastStatusUpdate") or ""))
    return parsed or dt.datetime.min.replace(tzinfo=dt.UTC)


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OcmStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], records: list[dict[str, Any]], api_key: str | None = None,
                 max_page: int = 10000) -> None:
        super().__init__(address, _Handler)
        self.api_key = api_key
        self.max_page = max_page
        self.lock = threading.Lock()
        self.records: dict[int, dict[str, Any]] = {}
        self.set_records(records)
        self.faults: deque[tuple[int, dict[str, str], bytes]] = deque()
        self.requests: list[dict[str, Any]] = []

    # --- test hooks --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v3"

    @property
    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def set_records(self, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.records = {r["ID"]: r for r in records if isinstance(r, dict) and isinstance(r.get("ID"), int)}
            self.extra: list[Any] = [r for r in records if not (isinstance(r, dict) and isinstance(r.get("ID"), int))]

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
            record = copy.deepcopy(self.records[ocm_id])
            record.update(fields)
            if mutate:
                mutate(record)
            if touch:
                record["DateLastStatusUpdate"] = _now_text()
            self.records[ocm_id] = record
            return record

    def delist(self, ocm_id: int) -> dict[str, Any]:
        with self.lock:
            return self.records.pop(ocm_id)

    def relist(self, record: dict[str, Any], touch: bool = False) -> None:
        with self.lock:
            record = copy.deepcopy(record)
            if touch:
                record["DateLastStatusUpdate"] = _now_text()
            self.records[record["ID"]] = record

    # --- the API -----------------------------------------------------------------------------
    def next_fault(self) -> tuple[int, dict[str, str], bytes] | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def select(self, params: dict[str, str]) -> list[Any]:
        with self.lock:
            records = list(self.records.values())
            extra = list(self.extra)
        since = _parse_since(params["modifiedsince"]) if "modifiedsince" in params else None
        if since is not None:
            records = [r for r in records if _record_time(r) >= since]
        if params.get("countrycode"):
            from chalicelib.ocm.reference import country_code

            wanted = {c.strip().upper() for c in params["countrycode"].split(",") if c.strip()}
            records = [r for r in records if country_code((r.get("AddressInfo") or {}).get("CountryID")) in wanted]
        after = _int(params.get("greaterthanid"), None)
        if after is not None:
            records = [r for r in records if r["ID"] > after]
        sortby = params.get("sortby", "")
        if sortby == "id_asc":
            records.sort(key=lambda r: r["ID"])
        elif sortby == "modified_asc":
            records.sort(key=lambda r: (_record_time(r), r["ID"]))
        else:
            records.sort(key=lambda r: r["ID"], reverse=True)
        limit = min(max(_int(params.get("maxresults"), 100), 1), self.max_page)
        return (records + extra)[:limit]


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
                  max_page: int = 10000) -> tuple[OcmStandIn, threading.Thread]:
    """Serve in a daemon thread; ``server.url`` is the base URL (``.../v3``); ``server.shutdown()`` stops it."""
    server = OcmStandIn((host, port), records if records is not None else load_records(records_path),
                        api_key=api_key, max_page=max_page)
    thread = threading.Thread(target=server.serve_forever, name="ocm-standin", daemon=True)
    thread.start()
    return server, thread
