"""``LOCAL_LAMBDAS=package``: the local stack calls every function from ``deployment.zip`` under the emulator.

The stack process starts one emulator per function (``start``), passes their URLs to its children
in ``LOCAL_LAMBDA_ENDPOINTS`` and calls the queue consumers and the schedule through them
(``handler``); the AppSync stand-in, in the ``chalice local`` child, calls the authorizer and the
resolvers through ``package_invoker``. Without that variable both fall back to the in-process call,
so ``make run`` keeps its fast default. The functions keep the package's stage variables, with the
local stack's settings on top.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devstack import lambdas

ENDPOINTS_ENV = "LOCAL_LAMBDA_ENDPOINTS"
Invoker = Callable[[str, Any], Any]
Handler = Callable[[Any, Any], Any]


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("LOCAL_LAMBDAS", "").strip().lower() == "package"


def package_invoker(in_process: Invoker) -> Invoker:
    """Call a function by name: through its emulator when the stack runs the package, else ``in_process``.

    The in-process invoker is handed in rather than built from app.py here, so nothing the app
    imports imports it back.
    """
    endpoints = os.environ.get(ENDPOINTS_ENV)
    if not endpoints:
        return in_process
    urls = json.loads(endpoints)
    return lambda name, event: lambdas.post_event(urls[name], event)


def handler(functions: lambdas.PackageFunctions | None, name: str, in_process: Handler | None) -> Handler | None:
    """What the pumps and the schedule call, ``(event, context)``: the emulator's function or app.py's."""
    if functions is None or in_process is None:
        return in_process
    return lambda event, context: functions.invoke(name, event)


def stack_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a packaged function gets from the local stack, on top of the package's own stage variables.

    Every setting the stack has, AWS credentials, and the checkout's dev signing key: the package's
    stage would read its key from Secrets Manager, and this way tokens from either mode verify in both.
    """
    from chalicelib.auth.keys import DEV_KEY_DIR, dev_keyring
    from chalicelib.sections import all_variables

    names = {v.env for v in all_variables()} | {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "POWERTOOLS_METRICS_NAMESPACE"}
    env = {name: environ[name] for name in names if name in environ}
    if not (env.get("JWT_PRIVATE_KEY") or env.get("JWT_PUBLIC_KEY") or env.get("JWT_KEY_SECRET_ID")):
        ring = dev_keyring(DEV_KEY_DIR)  # the authorizer reads only a public key, never JWT_PRIVATE_KEY
        env.update(JWT_PRIVATE_KEY=ring.private_pem(), JWT_PUBLIC_KEY=ring.public_pem(), JWT_KEY_SECRET_ID="")
    # The stack's plain values (store URI, OCM key or none) replace the package's secret ids: moto holds
    # no such secrets, and a set id with an empty plain value would send the function to Secrets Manager.
    # The pepper's id too: the stack's stage is local, so without LOGIN_KEY_PEPPER the dev pepper applies.
    env.update({name: "" for name in ("JWT_PUBLIC_KEYS_SECRET_ID", "MONGODB_URI_SECRET_ID", "OCM_API_KEY_SECRET_ID",
                                      "LOGIN_KEY_PEPPER_SECRET_ID") if not env.get(name)})
    return env


def start(data_dir: Path, say: Callable[[str], None]) -> lambdas.PackageFunctions:
    """Build the package if stale, unzip it into ``data_dir/package``, start an emulator per function.

    Sets ``LOCAL_LAMBDA_ENDPOINTS`` in this process's environment, so children started afterwards
    (``chalice local``) call the emulators too.
    """
    missing = lambdas.missing_tools()
    if missing:
        raise RuntimeError(f"LOCAL_LAMBDAS=package needs {', '.join(missing)}")
    if lambdas.package_is_stale():
        say("building the package (chalice package --stage prod)...")
        lambdas.build_package()
    task_root = data_dir / "package" / "task"
    if task_root.exists():
        shutil.rmtree(task_root)  # a clean /var/task every start: nothing left from an older package
    lambdas.unpack(lambdas.PACKAGE_DIR / "deployment.zip", task_root)
    specs = lambdas.read_functions(lambdas.PACKAGE_DIR / "sam.json")
    functions = lambdas.PackageFunctions(task_root, specs, stack_environment(), data_dir / "package" / "logs")
    endpoints = functions.start_all()
    os.environ[ENDPOINTS_ENV] = json.dumps(endpoints)
    say(f"functions from {lambdas.PACKAGE_DIR / 'deployment.zip'} under the Lambda emulator: "
        f"{len(endpoints)} (logs in {data_dir / 'package' / 'logs'})")
    return functions
