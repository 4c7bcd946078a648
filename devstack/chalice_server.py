"""``chalice local --no-autoreload``, except that a route sees the caller's real address.

Chalice's local server writes the constant ``127.0.0.1`` into every event's
``requestContext.identity.sourceIp`` (``chalice.local.LambdaEventConverter.LOCAL_SOURCE_IP``),
whoever connected. API Gateway gives the TCP peer there, and the AppSync stand-in
(``devstack/local_routes.py``) hands that address to the resolvers as AppSync does, so the
sign-in throttle can tell one caller from another locally too. This launcher runs the same
code path as the ``chalice local`` command (``chalice.cli.run_local_server``) with one change:
each connection's handler puts its peer address in that field.

Run as ``python -m devstack.chalice_server --stage local --host 127.0.0.1 --port 8000``
(``devstack/run.py`` does).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from chalice.cli import run_local_server
from chalice.cli.factory import CLIFactory
from chalice.local import ChaliceRequestHandler, LocalDevServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class PeerRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler, with the connection's peer as the event's ``sourceIp``."""

    def setup(self) -> None:
        # One handler (and one LocalGateway) per connection, so one peer for all its requests;
        # ``setup`` runs after ``client_address`` is known and before the first request is read.
        super().setup()
        self.local_gateway.event_converter.LOCAL_SOURCE_IP = self.client_address[0]


class PeerFactory(CLIFactory):
    """The CLI's factory, building a server whose handler reports the peer."""

    def create_local_server(self, app_obj, config, host: str, port: int) -> LocalDevServer:
        server = super().create_local_server(app_obj, config, host, port)
        # socketserver makes one RequestHandlerClass instance per connection: swap in ours.
        server.server.RequestHandlerClass = functools.partial(
            PeerRequestHandler, app_object=server.app_object, config=config)
        return server


def main(argv: list[str] | None = None) -> None:
    """What ``chalice local --no-autoreload`` does (``chalice/cli/__init__.py``), with ``PeerFactory``."""
    parser = argparse.ArgumentParser(prog="python -m devstack.chalice_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"  # as the CLI sets it, for apps that check
    os.chdir(PROJECT_ROOT)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    run_local_server(PeerFactory(str(PROJECT_ROOT), environ=os.environ), args.host, args.port, args.stage)


if __name__ == "__main__":
    main()
