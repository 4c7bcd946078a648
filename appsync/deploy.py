"""Deploy step: everything `chalice deploy` cannot declare, attached idempotently.

    python -m appsync.deploy --stage dev --first        # all three phases in order, also on a first deploy
    python -m appsync.deploy --stage dev                # after `chalice deploy --stage dev`
    python -m appsync.deploy --stage dev --only infra   # bus, queues, rules, DLQ wiring, alarms only
    python -m appsync.deploy --stage dev --teardown     # remove what this step made (after `chalice delete`)
    python -m appsync.deploy --stage dev --first --retire-previous-keys   # after a rotation's token lifetime

Order of a first deploy, which ``--first`` runs: ``--only infra`` (Chalice needs
the queues to exist to subscribe its consumers), ``chalice deploy``, then the
full step. Each resource prints one line: created / updated / unchanged (or
deleted / reverted on teardown); a second run prints only "unchanged" and exits 0.

Settings are those the stage's Lambdas see: the environment of
``.chalice/config.json`` (top level, then the stage, then
``stages.<stage>.lambda_functions.<function>``, merged as Chalice merges them) over
this process's environment, so queue and bus names match what ``app.py`` computes.
Every phase first writes the authorizer's public-keys secret from the signing-key
secret and creates the sign-in throttle's pepper if missing (``appsync/secrets.py``):
phase 1 of ``--first`` does it before ``chalice deploy`` replaces the functions'
processes, so a new key is known, and the pepper exists, when they start.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from appsync.infra import Changes, Infra, delete_rule
from appsync.secrets import KeySecrets, ensure_login_pepper, ensure_public_keys
from appsync.wiring import Deployed, Wiring
from chalicelib.sections import StageSettings, load_stage_settings
from chalicelib.topology import QUEUES, rule_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHALICE_DIR = PROJECT_ROOT / ".chalice"
APPSYNC_DIR = Path(__file__).resolve().parent

Clients = Callable[[str], Any]
# Whose environment names which key secret: the resolver signs, the authorizer verifies.
SIGNER, VERIFIER = "auth_resolver", "authorizer"


def settings_for_stage(stage: str, chalice_dir: Path = CHALICE_DIR,
                       base_env: Mapping[str, str] | None = None, function: str | None = None) -> StageSettings:
    """Settings from config.json's environment_variables merged over ``base_env`` (default os.environ).

    ``function`` adds that function's own variables (``stages.<stage>.lambda_functions.<function>``,
    the only per-function level Chalice merges): where each secret id lives.
    """
    config = json.loads((chalice_dir / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"stage {stage!r} is not in {chalice_dir / 'config.json'}")
    stage_config = config["stages"][stage]
    env = dict(os.environ if base_env is None else base_env)
    env.update(config.get("environment_variables", {}))
    env.update(stage_config.get("environment_variables", {}))
    if function is not None:
        env.update(stage_config.get("lambda_functions", {}).get(function, {}).get("environment_variables", {}))
    env.setdefault("JUCR_STAGE", stage)
    return load_stage_settings(env)


def key_secrets(stage: str, chalice_dir: Path = CHALICE_DIR) -> KeySecrets:
    """The signing-key secret (the resolver's ``JWT_KEY_SECRET_ID``), the authorizer's public-keys secret and
    the resolver's throttle pepper (``LOGIN_KEY_PEPPER_SECRET_ID``)."""
    signer = settings_for_stage(stage, chalice_dir, function=SIGNER).auth
    return KeySecrets(signing_id=signer.jwt_key_secret_id,
                      public_id=settings_for_stage(stage, chalice_dir, function=VERIFIER).authorizer
                      .jwt_public_keys_secret_id, pepper_id=signer.login_key_pepper_secret_id)


def load_deployed(stage: str, chalice_dir: Path = CHALICE_DIR) -> Deployed | None:
    path = chalice_dir / "deployed" / f"{stage}.json"
    if not path.exists():
        return None
    return Deployed.from_json(json.loads(path.read_text()))


def boto_clients(settings: StageSettings) -> Clients:
    """One cached boto3 client per service, honouring ``AWS_ENDPOINT_URL`` (moto)."""
    import boto3

    @cache
    def client(name: str) -> Any:
        core = settings.core
        return boto3.client(name, region_name=core.aws_region, endpoint_url=core.aws_endpoint_url or None)

    return client


def _alarms_module() -> ModuleType | None:
    """The reliability engineer's ``appsync/alarms.py`` (optional until it lands)."""
    try:
        return importlib.import_module("appsync.alarms")
    except ModuleNotFoundError as exc:
        if exc.name != "appsync.alarms":
            raise
        return None


def _appsync(clients: Clients, settings: StageSettings, changes: Changes, deployed: Deployed):
    from appsync.appsync_api import AppSyncApi

    resolver_map = json.loads((APPSYNC_DIR / "resolvers.json").read_text())
    schema_text = (APPSYNC_DIR / "schema.graphql").read_text()
    return AppSyncApi(clients, settings, changes, deployed.functions, resolver_map, schema_text)


def deploy(clients: Clients, settings: StageSettings, deployed: Deployed | None, only_infra: bool,
           changes: Changes, keys: KeySecrets | None = None, retire_previous_keys: bool = False) -> Changes:
    if keys is not None:
        ensure_public_keys(clients, keys, changes, retire_previous=retire_previous_keys)
        ensure_login_pepper(clients, keys.pepper_id, changes)
    Infra(clients, settings, changes).apply_messaging()
    Wiring(clients, settings, changes, deployed or Deployed()).apply()
    alarms = _alarms_module()
    if alarms is not None:
        alarms.ensure_alarms(clients, settings, changes)
    else:  # HOOK: appsync/alarms.py (DLQ/reliability issue) is not there yet
        print("note: appsync/alarms.py not found; alarms and SNS topic skipped", file=sys.stderr)
    if only_infra:
        return changes
    if deployed is None or "authorizer" not in deployed.functions:
        raise SystemExit(f"no Lambda ARNs for stage {settings.core.stage!r}: run `chalice deploy --stage "
                         f"{settings.core.stage}` first (or pass --only infra)")
    _appsync(clients, settings, changes, deployed).apply()
    return changes


def teardown(clients: Clients, settings: StageSettings, deployed: Deployed | None, changes: Changes) -> Changes:
    """Remove what :func:`deploy` made; Chalice's functions, roles, mappings and schedule rules stay."""
    deployed = deployed or Deployed()
    _appsync(clients, settings, changes, deployed).teardown()
    Wiring(clients, settings, changes, deployed).teardown()
    alarms = _alarms_module()
    if alarms is not None:
        alarms.delete_alarms(clients, settings, changes)
    _teardown_messaging(clients, settings, changes)
    return changes


def _teardown_messaging(clients: Clients, settings: StageSettings, changes: Changes) -> None:
    events = clients("events")
    sqs = clients("sqs")
    bus = settings.core.event_bus_name
    for spec in QUEUES:
        if not spec.detail_types:
            continue
        delete_rule(events, rule_name(settings.core, spec), bus, changes)
    for spec in QUEUES:
        name = settings.core.queue_name(spec.short)
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        sqs.delete_queue(QueueUrl=url)
        changes.record("deleted", "queue", name)
    try:
        events.describe_event_bus(Name=bus)
    except events.exceptions.ResourceNotFoundException:
        return
    leftover = events.list_rules(EventBusName=bus).get("Rules", [])
    if leftover:  # someone else's rules live on this bus: keep it rather than fail half-way
        changes.record("kept", "event bus", f"{bus} ({len(leftover)} foreign rules)")
        return
    events.delete_event_bus(Name=bus)
    changes.record("deleted", "event bus", bus)


def run(stage: str, only_infra: bool = False, remove: bool = False, clients: Clients | None = None,
        chalice_dir: Path = CHALICE_DIR, echo: Callable[[str], None] | None = print,
        retire_previous_keys: bool = False) -> Changes:
    settings = settings_for_stage(stage, chalice_dir)
    clients = clients or boto_clients(settings)
    deployed = load_deployed(stage, chalice_dir)
    changes = Changes(echo=echo)
    if remove:
        return teardown(clients, settings, deployed, changes)
    return deploy(clients, settings, deployed, only_infra, changes, key_secrets(stage, chalice_dir),
                  retire_previous_keys)


def run_chalice_deploy(stage: str, project_dir: Path = PROJECT_ROOT, env: Mapping[str, str] | None = None) -> None:
    """``chalice deploy --stage S`` from the venv of this interpreter (else PATH); its output goes through."""
    beside = Path(sys.executable).with_name("chalice")
    chalice = str(beside) if beside.exists() else shutil.which("chalice")
    if chalice is None:
        raise SystemExit("chalice is not installed here: run `make venv` and use .venv/bin/python")
    done = subprocess.run([chalice, "deploy", "--stage", stage], cwd=project_dir,
                          env=None if env is None else dict(env), check=False)
    if done.returncode != 0:
        raise SystemExit(f"`chalice deploy --stage {stage}` failed (exit {done.returncode}); nothing after it ran. "
                         "Fix the cause and run --first again: every phase is idempotent.")


def first_deploy(stage: str, clients: Clients | None = None, chalice_dir: Path = CHALICE_DIR,
                 echo: Callable[[str], None] | None = print,
                 chalice: Callable[[str, Path], None] = run_chalice_deploy,
                 retire_previous_keys: bool = False) -> Changes:
    """The three phases of a deploy in the only order that works on an empty account.

    Queues first, because Chalice subscribes its consumers to queues that must exist;
    then Chalice's Lambdas; then the wiring and AppSync, which need the Lambda ARNs
    Chalice wrote to ``.chalice/deployed/<stage>.json``. Each phase is idempotent, so
    the whole command is too, and it is the one to run after every code change.
    """
    say = echo or (lambda _line: None)
    say(f"phase 1/3: public keys, bus, queues, rules, alarms for stage {stage}")
    run(stage, only_infra=True, clients=clients, chalice_dir=chalice_dir, echo=echo,
        retire_previous_keys=retire_previous_keys)
    say(f"phase 2/3: chalice deploy --stage {stage}")
    chalice(stage, chalice_dir.parent)
    say("phase 3/3: wiring, schedules, AppSync")
    return run(stage, clients=clients, chalice_dir=chalice_dir, echo=echo, retire_previous_keys=retire_previous_keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appsync.deploy",
                                     description="Attach AppSync, bus, queues, wiring and alarms to a Chalice stage.")
    parser.add_argument("--stage", required=True, help="Chalice stage (dev, prod, ...)")
    parser.add_argument("--only", choices=["infra"], help="infra: everything except the AppSync API")
    parser.add_argument("--teardown", action="store_true", help="delete what this step created")
    parser.add_argument("--first", action="store_true",
                        help="run all phases in order: infra, `chalice deploy`, wiring and AppSync")
    parser.add_argument("--retire-previous-keys", action="store_true",
                        help="drop previousPublicKeys from the authorizer's secret (tokens of old keys are refused)")
    args = parser.parse_args(argv)
    if args.first and (args.only or args.teardown):
        parser.error("--first runs every phase; it cannot be combined with --only or --teardown")
    if args.teardown and args.retire_previous_keys:
        parser.error("--retire-previous-keys writes the public-keys secret; teardown leaves secrets alone")
    if args.first:
        changes = first_deploy(args.stage, retire_previous_keys=args.retire_previous_keys)
    else:
        changes = run(args.stage, only_infra=args.only == "infra", remove=args.teardown,
                      retire_previous_keys=args.retire_previous_keys)
    verb = "removed" if args.teardown else ("changed" if changes.changed else "nothing to change")
    print(f"done: {len(changes.lines)} resources, {verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
