"""Start the whole local stack, print where everything is, stop it all on Ctrl-C.

Processes: the embedded MongoDB (mongo-java-server, H2 file; unless ``MONGODB_URI`` is set), ``moto_server`` and
``chalice local --stage local``. Threads in this process: the OCM stand-in
(unless ``OCM_API_URL``/``OCM_API_KEY`` point at the real API), one event pump
per queue and the schedule. Variables set by the caller win over the defaults
below; the resolved endpoints are written to ``.local/devstack.json`` so the
operator CLI run from the checkout finds this stack. With ``LOCAL_LAMBDAS=package`` every
function runs from ``deployment.zip`` under the Lambda emulator instead (``devstack/package_mode.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack import package_mode, preflight
from devstack.log_format import WholeLines

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = PROJECT_ROOT / ".local" / "devstack.json"
PREFLIGHT_FAILED = 2  # a start-up check failed: nothing was started (1: a start or a child failed)

# Defaults for the local stage; anything already in the environment wins.
LOCAL_DEFAULTS = {
    "JUCR_STAGE": "local",
    "JUCR_APP_NAME": "jucr",
    "EVENT_BUS_NAME": "jucr-local",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "MONGODB_DB": "jucr",
    "WALLET_OPENING_BALANCE": "50.00",
    "BCRYPT_COST": "4",
    "SQS_BACKOFF_BASE_SECONDS": "1",
    "LOCAL_OCM_SYNC_INTERVAL": "300",
    "POWERTOOLS_METRICS_NAMESPACE": "JUCR",
}


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps({"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), **record}),
          flush=True)


def _say(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


def _wait_http(url: str, timeout: float, method: str = "GET", body: bytes | None = None,
               proc: subprocess.Popen | None = None) -> None:
    """Wait for ``url`` to answer; ``proc`` exiting first is a failure, since then someone else answered."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{Path(str(proc.args[0])).name} exited before {url} answered")
        try:
            req = urllib.request.Request(url, data=body, method=method,  # noqa: S310 - loopback only
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2):  # noqa: S310 - loopback only
                return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.2)


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir).resolve()
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.mongo = None
        self.pumps: list = []
        self.stop_event = threading.Event()
        self.standin = None
        self.functions = None  # LOCAL_LAMBDAS=package: the package's functions under the emulator
        self.realtime = None  # the AppSync real-time endpoint and the bus -> AppSync delivery

    # -- processes ---------------------------------------------------------
    def start_mongo(self) -> str:
        if os.environ.get("MONGODB_URI"):
            _say("MongoDB: using MONGODB_URI from the environment")
            return os.environ["MONGODB_URI"]
        from devstack.embedded_mongo import EmbeddedMongo

        h2_file = self.data_dir / "mongo" / "jucr.mv.db"
        self.mongo = EmbeddedMongo(self.data_dir / "mongo", port=self.args.mongo_port,
                                   log_file=self.data_dir / "mongo-java-server.log", h2_file=h2_file).start()
        _say(f"MongoDB (mongo-java-server, H2 file {h2_file}, up in {self.mongo.started_in:.1f}s): {self.mongo.uri}")
        return self.mongo.uri

    def start_moto(self) -> str:
        from devstack.stack_process import start_moto

        moto = start_moto(self.data_dir / "moto.log", port=self.args.moto_port, append=True)
        self.children.append(("moto_server", moto.process))
        _say(f"AWS stand-in (moto_server): {moto.url}")
        return moto.url

    def start_standin(self) -> None:
        if os.environ.get("OCM_API_KEY") or os.environ.get("OCM_API_URL"):
            _say(f"OpenChargeMap: {os.environ.get('OCM_API_URL', 'https://api.openchargemap.io/v3')} "
                 "(from the environment)")
            return
        try:
            from devstack.ocm_standin import start_standin
        except ImportError:
            _say("OpenChargeMap stand-in not available; OCM sync will call the public API")
            return
        self.standin, _ = start_standin("127.0.0.1", self.args.ocm_port)
        os.environ["OCM_API_URL"] = f"http://127.0.0.1:{self.args.ocm_port}/v3"
        _say(f"OpenChargeMap stand-in (recorded fixture): {os.environ['OCM_API_URL']}")

    def start_chalice(self) -> str:
        # `chalice local` with the caller's real address as sourceIp (devstack/chalice_server.py)
        proc = subprocess.Popen([sys.executable, "-m", "devstack.chalice_server", "--stage", "local", "--host",
                                 "127.0.0.1", "--port", str(self.args.http_port)], cwd=PROJECT_ROOT,
                                start_new_session=True)
        self.children.append(("chalice local", proc))
        url = f"http://127.0.0.1:{self.args.http_port}"
        _wait_http(f"{url}/graphql", 60, "POST", b'{"query":"{ __typename }"}', proc=proc)
        return url

    # -- wiring --------------------------------------------------------------
    def provision(self) -> None:
        from appsync.infra import Changes, Infra
        from chalicelib import bootstrap
        from chalicelib.sections import load_stage_settings
        from chalicelib.store import ensure_indexes

        bootstrap.reset()
        settings = load_stage_settings()  # the deploy step's code wants the whole stage
        changes = Changes(echo=lambda line: _say(f"  {line}"))
        _say("provisioning bus, queues and rules into moto (same code as the deploy step):")
        infra = Infra(bootstrap.aws_client, settings, changes)
        infra.apply_messaging()
        try:
            from appsync.alarms import ensure_alarms
        except ImportError:
            ensure_alarms = None
        if ensure_alarms:
            ensure_alarms(bootstrap.aws_client, settings, changes)
        names = ensure_indexes(bootstrap.database(), bootstrap.all_index_specs())
        _say(f"indexes ensured: {len(names)}")

    def start_pumps(self) -> None:
        import app as chalice_app
        from appsync.infra import Infra
        from chalicelib import bootstrap
        from chalicelib.sections import load_stage_settings
        from chalicelib.topology import QUEUES
        from devstack.chaos_hook import install_from_environment
        from devstack.pump import QueuePump

        settings = load_stage_settings()
        install_from_environment(dict(os.environ), _say)
        infra = Infra(bootstrap.aws_client, settings)
        base = float(os.environ.get("SQS_BACKOFF_BASE_SECONDS", "1"))
        for spec in QUEUES:
            handler = package_mode.handler(self.functions, spec.consumer or "",
                                           getattr(chalice_app, spec.consumer or "", None))
            if handler is None:
                continue
            pump = QueuePump(bootstrap.aws_client("sqs"), spec, infra.queue_url(spec.short),
                             infra.queue_arn(spec.short), handler, _emit, settings.core.aws_region, backoff_base=base)
            pump.start()
            self.pumps.append(pump)
        _say(f"event pumps: {', '.join(f'{p.spec.short}->{p.spec.consumer}' for p in self.pumps if p.spec.consumer)}")

    def start_schedule(self) -> None:
        import app as chalice_app
        from devstack import schedule

        handler = package_mode.handler(self.functions, "ocm_sync", getattr(chalice_app, "ocm_sync", None))
        schedule.start(handler, os.environ.get("LOCAL_OCM_SYNC_INTERVAL", "300"), self.stop_event, _emit, _say)

    def start_bus_log(self) -> None:
        from chalicelib import bootstrap
        from chalicelib.config import CoreSettings
        from devstack import bus_log

        self.pumps.append(bus_log.start(bootstrap.aws_client, bootstrap.settings(CoreSettings), _emit))
        _say("bus log: one line per event on the bus (a catch-all rule and its queue)")

    def start_realtime(self) -> None:
        from devstack import realtime_stack

        self.realtime = realtime_stack.start(self.args.realtime_port, _emit, _say, self.args.realtime_tls_cert,
                                             self.args.realtime_tls_key)

    def write_state(self, http_url: str) -> None:
        """Endpoints and every non-secret setting the stack runs with, for the operator CLI and the tests."""
        from chalicelib.sections import all_variables

        keys = [v.env for v in all_variables() if not v.secret]
        keys += ["MONGODB_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]  # local stand-ins' values only
        state = {"pid": os.getpid(), "graphql": f"{http_url}/graphql",
                 **({"realtime": self.realtime.url} if self.realtime else {}),
                 "env": {k: os.environ[k] for k in keys if k in os.environ}}
        if self.args.data_dir == str(PROJECT_ROOT / ".local" / "devstack"):
            STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
            STATE_FILE.write_text(json.dumps(state, indent=2))
        (self.data_dir / "devstack.json").write_text(json.dumps(state, indent=2))

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for key, value in LOCAL_DEFAULTS.items():
            os.environ.setdefault(key, value)
        os.environ["MONGODB_URI"] = self.start_mongo()
        os.environ.setdefault("AWS_ENDPOINT_URL", self.start_moto())
        self.start_standin()
        self.provision()
        if package_mode.enabled():
            self.functions = package_mode.start(self.data_dir, _say)
        from devstack import realtime_stack

        os.environ["LOCAL_REALTIME_URL"] = realtime_stack.url(self.args)  # GraphiQL (in chalice local) needs it
        http_url = self.start_chalice()
        self.start_bus_log()  # first, so no event published from here on goes unlogged
        self.start_pumps()
        self.start_realtime()
        self.start_schedule()
        self.write_state(http_url)
        _say(f"GraphQL:     POST {http_url}/graphql   (GraphiQL: GET)")
        _say(f"Bus door:    POST {http_url}/local/events")
        _say(f"Real-time:   {self.realtime.url}   (AppSync protocol, subprotocol graphql-ws)")
        _say("ready. Ctrl-C stops everything.")
        return http_url

    def stop(self) -> None:
        self.stop_event.set()
        for pump in self.pumps:
            pump.stop()
        for pump in self.pumps:
            pump.join(timeout=3)  # let in-flight polls finish before moto goes away
        if self.realtime is not None:
            self.realtime.stop()
        if self.functions is not None:
            self.functions.close()
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.standin is not None:
            self.standin.shutdown()
        if self.mongo is not None:
            self.mongo.stop()
        if STATE_FILE.exists() and json.loads(STATE_FILE.read_text()).get("pid") == os.getpid():
            STATE_FILE.unlink()
        _say("stopped.")


def main(args: argparse.Namespace) -> int:
    """Run the stack until Ctrl-C, SIGTERM or a child process exits (the options: ``devstack/__main__.py``)."""
    sys.path.insert(0, str(PROJECT_ROOT))
    sys.stdout = WholeLines(sys.stdout)  # before any logger or thread takes hold of stdout
    found = preflight.problems(args)
    if found:  # before anything starts, so nothing is left running and nothing misleads
        for problem in found:
            print(f"[devstack] cannot start: {problem}", file=sys.stderr, flush=True)
        return PREFLIGHT_FAILED
    stack = Stack(args)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack.start()
        while all(proc.poll() is None for _, proc in stack.children):
            time.sleep(0.5)
        dead = [name for name, proc in stack.children if proc.poll() is not None]
        _say(f"{', '.join(dead)} exited; stopping.")
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        _say(f"start-up failed: {exc}")
        return 1
    finally:
        stack.stop()
