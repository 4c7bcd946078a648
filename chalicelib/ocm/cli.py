"""``python -m chalicelib ocm-sync [--full] [--max-pages N]``: the worker, run by hand.

Progress goes to stderr while it runs; the OCM_SYNC_COMPLETED payload (also
published to the bus) is the last line on stdout, as JSON. Exit codes: 0 done,
3 stopped early (``--max-pages`` / ``--time-budget``; run again to continue),
4 OCM refused the key, 5 OCM or the store unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ocm-sync", help="mirror OpenChargeMap now (incremental, or --full sweep)")
    parser.add_argument("--full", action="store_true", help="page through every POI and mark vanished ones removed")
    parser.add_argument("--max-pages", type=int, default=None, help="stop after N pages (resume with the next run)")
    parser.add_argument("--time-budget", type=float, default=None, help="stop before N seconds have passed")
    parser.add_argument("--no-publish", action="store_true", help="do not put OCM_SYNC_COMPLETED on the bus")
    parser.set_defaults(func=run)


def _progress(line: str) -> None:
    print(f"[ocm-sync] {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.events.publisher import PublishError
    from chalicelib.ocm.client import OcmAuthError, OcmError
    from chalicelib.ocm.entry import client, repository, sync_options
    from chalicelib.ocm.sync import Deadline, SyncDeps, run_sync
    from chalicelib.store import StoreError

    settings = bootstrap.settings()
    _progress(f"{'full sweep' if args.full else 'incremental sync'} from {settings.ocm_api_url}")
    source = client(settings)
    try:
        deps = SyncDeps(source=source, repo=repository(),
                        publisher=None if args.no_publish else bootstrap.publisher(),
                        clock=bootstrap.utc_now, progress=_progress)
        payload = run_sync(deps, sync_options(settings, args.full, args.max_pages),
                           Deadline(budget_seconds=args.time_budget))
    except OcmAuthError as exc:
        return _fail("OcmAuthError", str(exc), 4)
    except (OcmError, StoreError, PublishError) as exc:
        return _fail(type(exc).__name__, str(exc), 5)
    finally:
        source.close()
    print(json.dumps(payload), flush=True)
    return 0 if payload["complete"] else 3


def _fail(error: str, message: str, code: int) -> int:
    _progress(f"failed: {message}")
    print(json.dumps({"error": error, "message": message}), flush=True)
    return code
