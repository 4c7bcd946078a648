"""Start the local real-time half of AppSync: the WebSocket endpoint and the bus -> AppSync delivery.

Kept apart from ``run.py`` so the supervisor needs only a call and a stop: the
rules go into moto, the real-time server starts on its own port, and a queue
pump feeds the tapped events to the delivery, which publishes to the server.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.topology import QueueSpec
from devstack.pump import QueuePump
from devstack.realtime import RealtimeServer

TAP_SPEC = QueueSpec(short="appsync-tap", consumer=None, batch_size=10)


@dataclass
class LocalRealtime:
    server: RealtimeServer
    pump: QueuePump

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.pump.stop()
        self.pump.join(timeout=3)
        self.server.stop()


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """``wss://`` when a certificate is given (aws-amplify refuses plain ``ws://``)."""
    if not cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key or None)
    return context


def start(port: int, emit: Callable[[dict[str, Any]], None], say: Callable[[str], None],
          tls_cert: str | None = None, tls_key: str | None = None) -> LocalRealtime:
    import app as chalice_app
    from appsync.infra import Changes
    from chalicelib import bootstrap
    from chalicelib.config import CoreSettings
    from devstack import appsync_bus, package_mode
    from devstack.gateway import Gateway, in_process_invoker

    say("bus -> AppSync rules (the deploy step's patterns and targets), tapped locally:")
    settings = bootstrap.settings(CoreSettings)
    gateway = Gateway(package_mode.package_invoker(in_process_invoker(chalice_app.app)))
    url, arn = appsync_bus.provision(bootstrap.aws_client, settings, gateway.schema,
                                     Changes(echo=lambda line: say(f"  {line}")))
    keepalive = float(os.environ.get("LOCAL_REALTIME_KA_SECONDS", "60"))
    server = RealtimeServer(gateway, port=port, tls=tls_context(tls_cert, tls_key), keepalive_seconds=keepalive)
    server.start()
    sqs = bootstrap.aws_client("sqs")
    # A short back-off cap: notifications are live-only, a late one is worth little.
    pump = QueuePump(sqs, TAP_SPEC, url, arn, appsync_bus.AppSyncDelivery(gateway, server.publish), emit,
                     settings.aws_region, backoff_base=1.0, backoff_cap=5.0)
    pump.start()
    return LocalRealtime(server, pump)


def url(args: Any) -> str:
    """The endpoint's URL before it starts (``chalice local`` is started first and serves GraphiQL)."""
    return f"{'wss' if args.realtime_tls_cert else 'ws'}://127.0.0.1:{args.realtime_port}/graphql"
