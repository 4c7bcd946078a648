"""``python -m chalicelib ocm-sync [--full [--allow-mass-removal]] [--max-pages N] [--time-budget S]``.

The worker, run by hand.

Progress goes to stderr while it runs; the OCM_SYNC_COMPLETED payload (also
published to the bus) is the last line on stdout, as JSON. Exit codes (from
:mod:`chalicelib.cli_exits`): 0 done, 3 stopped early (``--max-pages`` /
``--time-budget``; run again to continue), 4 OCM refused the key, 5 OCM or the
store unavailable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Any

from chalicelib import cli_exits


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ocm-sync", help="mirror OpenChargeMap now (incremental, or --full sweep)",
                                   epilog=cli_exits.epilog(cli_exits.STOPPED_EARLY, cli_exits.KEY_REFUSED),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="page through every POI and mark vanished ones removed")
    parser.add_argument("--max-pages", type=_positive_int, default=None,
                        help="stop after N pages, N >= 1 (resume with the next run)")
    parser.add_argument("--time-budget", type=_positive_seconds, default=None,
                        help="stop before N seconds (> 0) have passed")
    parser.add_argument("--no-publish", action="store_true", help="do not put OCM_SYNC_COMPLETED on the bus")
    parser.add_argument("--allow-mass-removal", action="store_true",
                        help="with --full: remove unseen stations even when more than half the mirror went unseen")
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (0 used to mean "no limit", NaN and negatives "stop at once")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def _progress(line: str) -> None:
    print(f"[ocm-sync] {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from chalicelib import bootstrap
    from chalicelib.events.publisher import PublishError
    from chalicelib.ocm.client import OcmAuthError, OcmError
    from chalicelib.ocm.entry import client, repository, sync_options
    from chalicelib.ocm.settings import OcmSettings
    from chalicelib.ocm.sync import Deadline, SyncDeps, run_sync
    from chalicelib.store import StoreError

    settings = bootstrap.settings(OcmSettings)
    _progress(f"{'full sweep' if args.full else 'incremental sync'} from {settings.ocm_api_url}")
    source = None
    try:
        source = client(settings)
        deps = SyncDeps(source=source, repo=repository(),
                        publisher=None if args.no_publish else bootstrap.publisher(),
                        clock=bootstrap.utc_now, progress=_progress)
        options = sync_options(settings, args.full, args.max_pages)
        if getattr(args, "allow_mass_removal", False):
            options = dataclasses.replace(options, max_removal_share=1.0)
        payload = run_sync(deps, options, Deadline(budget_seconds=args.time_budget))
    except OcmAuthError as exc:
        return _fail("OcmAuthError", str(exc), cli_exits.KEY_REFUSED)
    except (OcmError, StoreError, PublishError) as exc:
        return _fail(type(exc).__name__, str(exc), cli_exits.UNAVAILABLE)
    finally:
        if source is not None:
            source.close()
    print(json.dumps(payload), flush=True)
    return cli_exits.OK if payload["complete"] else cli_exits.STOPPED_EARLY


def _fail(error: str, message: str, code: int) -> int:
    _progress(f"failed: {message}")
    print(json.dumps({"error": error, "message": message}), flush=True)
    return code
