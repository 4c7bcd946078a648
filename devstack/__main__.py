"""``python -m devstack``: the local stack's options (each also read from an environment variable)."""

from __future__ import annotations

import argparse
import os
import sys

from devstack.run import PROJECT_ROOT, main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Run the JUCR local stack.")
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("LOCAL_HTTP_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("LOCAL_MOTO_PORT", "5055")))
    parser.add_argument("--mongo-port", type=int, default=int(os.environ.get("LOCAL_MONGO_PORT", "27017")))
    parser.add_argument("--ocm-port", type=int, default=int(os.environ.get("LOCAL_OCM_PORT", "8011")))
    parser.add_argument("--realtime-port", type=int, default=int(os.environ.get("LOCAL_REALTIME_PORT", "8001")))
    parser.add_argument("--realtime-tls-cert", default=os.environ.get("LOCAL_REALTIME_TLS_CERT"))  # PEM: wss://
    parser.add_argument("--realtime-tls-key", default=os.environ.get("LOCAL_REALTIME_TLS_KEY"))
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / ".local" / "devstack"))
    parser.add_argument("--log-format", choices=("json", "pretty"), default=os.environ.get("LOCAL_LOG_FORMAT", "json"),
                        help="json (default): one JSON object per line; pretty: one short line each, for reading")
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.log_format == "pretty":
        from devstack.log_format import run_pretty

        return run_pretty(argv)
    return main(args)


raise SystemExit(run(sys.argv[1:]))
