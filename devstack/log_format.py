"""``--log-format pretty`` (``LOCAL_LOG_FORMAT=pretty``): the stack's JSON lines as one short line each.

The stack itself always writes JSON (tests, ``bench/chaos/`` and log tools read it);
pretty mode runs that same stack as a child and renders its output line by line. A
filter on the whole output, rather than a second formatter in every writer, because
the lines come from several places: this process's pumps and bus log, the functions'
Powertools logger, their metrics (EMF), and ``chalice local`` in its own process.
A line that is not JSON (``[devstack] ...``, a traceback) passes through unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any, TextIO

# Powertools keys that repeat on every record or that Lambda fills in: noise when reading locally.
QUIET_KEYS = frozenset({"ts", "timestamp", "level", "message", "location", "service", "cold_start",
                        "function_name", "function_memory_size", "function_arn", "function_request_id",
                        "xray_trace_id", "sampling_rate", "sourceQueue"})
# Ids that only tell records apart (a person greps the business ids: sessionId, userId, invoiceId).
SHORT_IDS = frozenset({"messageId", "busEventId", "eventId", "correlationId", "correlation_id", "runId"})


def _clock(record: dict[str, Any]) -> str:
    stamp = record.get("ts") or record.get("timestamp")
    millis = (record.get("_aws") or {}).get("Timestamp") if isinstance(record.get("_aws"), dict) else None
    try:
        when = (dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc) if isinstance(millis, int | float)
                else dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")))
    except ValueError:
        when = dt.datetime.now(dt.timezone.utc)
    return when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def _value(key: str, value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    text = str(value)
    return text[:8] if key in SHORT_IDS else text


def _pairs(record: dict[str, Any], skip: frozenset[str] | set[str] = frozenset()) -> str:
    return " ".join(f"{k}={_value(k, v)}" for k, v in record.items()
                    if k not in QUIET_KEYS and k not in skip and v not in (None, "", []))


def _pump(record: dict[str, Any]) -> str:
    return (f"pump {record.get('pump', ''):<12} {record.get('outcome', ''):<15} {record.get('detailType') or '-':<17} "
            + _pairs(record, {"pump", "outcome", "detailType", "function"}))


def _bus(record: dict[str, Any]) -> str:
    return f"bus  {record.get('bus') or '-':<17} {record.get('source') or '-':<13} " \
           + _pairs(record, {"bus", "source"})


def _metrics(record: dict[str, Any]) -> str:
    directives = (record.get("_aws") or {}).get("CloudWatchMetrics") or []
    names = [m.get("Name") for d in directives for m in d.get("Metrics", [])]
    dimensions = {d for directive in directives for group in directive.get("Dimensions", []) for d in group}
    shown = {name: record.get(name) for name in names if name in record}
    dims = {name: record.get(name) for name in dimensions if name in record and name != "service"}
    return "metric " + _pairs({**dims, **shown})


def _app(record: dict[str, Any]) -> str:
    level = {"WARNING": "WARN", "CRITICAL": "CRIT"}.get(str(record.get("level")), str(record.get("level", "INFO")))
    return f"{level:<5} {record.get('message', '')}  " + _pairs(record)


def render(record: dict[str, Any]) -> str:
    """One record as one line: time, what it is, then its fields as ``key=value``."""
    if "pump" in record:
        body = _pump(record)
    elif "bus" in record:
        body = _bus(record)
    elif "_aws" in record:
        body = _metrics(record)
    elif "schedule" in record:
        body = f"schedule {record['schedule']} {record.get('outcome', '')} " + _pairs(record, {"schedule", "outcome"})
    else:
        body = _app(record)
    return f"{_clock(record)} {body}".rstrip()


def render_line(line: str) -> str:
    """A JSON object line rendered; anything else as it was."""
    text = line.rstrip("\n")
    if not text.startswith("{"):
        return text
    try:
        record = json.loads(text)
    except ValueError:
        return text
    return render(record) if isinstance(record, dict) else text


class WholeLines:
    """``sys.stdout`` for a process whose threads all print: each line goes out whole.

    ``print`` writes the text and its newline separately, so two threads printing at once
    (a pump's line, the metrics flush) could share a line. Text is kept per thread until
    its newline, then written under one lock.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._local = threading.local()

    def write(self, text: str) -> int:
        pending = getattr(self._local, "pending", "") + text
        whole, newline, rest = pending.rpartition("\n")
        self._local.pending = rest
        if newline:
            with self._lock:
                self.stream.write(whole + newline)
                self.stream.flush()
        return len(text)

    def flush(self) -> None:
        pending, self._local.pending = getattr(self._local, "pending", ""), ""
        with self._lock:
            if pending:
                self.stream.write(pending)
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...: the real stream's
        return getattr(self.stream, name)


def run_pretty(argv: list[str]) -> int:
    """Run ``python -m devstack`` (JSON) as a child and print its output rendered; its exit code is ours.

    Ctrl-C reaches the child from the terminal (same process group) and it stops itself, so
    this process ignores it and keeps rendering until the child's ``stopped.``; a SIGTERM
    sent to this process alone is passed on.
    """
    command = [sys.executable, "-m", "devstack", *argv, "--log-format", "json"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOCAL_LOG_FORMAT="json")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                             errors="replace", bufsize=1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    assert child.stdout is not None
    for line in child.stdout:
        print(render_line(line), flush=True)
    return child.wait()
