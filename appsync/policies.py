"""Least-privilege IAM policy files, one per function and stage, for `chalice deploy`.

Chalice reads ``iam_policy_file`` verbatim (no substitution), so the files name
the stage's concrete resources: queue, bus, secret and log group names. Region
and account stay ``*`` inside the ARNs because the same file must deploy to any
account; the resource *names* are what scope the grant. The only bare ``"*"``
resources allowed are none at all: logs are scoped to the function's own log
group. ``python -m appsync.policies`` rewrites the files; ``--check`` exits 1
when a file is stale (a unit test does the same).

Who needs what, and why:
- every function: write its own log group (CloudWatch Logs; EMF metrics ride on
  the logs, so no ``cloudwatch:PutMetricData``);
- SQS consumers: receive/delete/visibility on their queue (the event source
  mapping polls with the function's role; the batch runner also sets a failed
  record's retry back-off with ``ChangeMessageVisibility`` on it), and send to that
  queue's DLQ when the topology gives it one (``QueueSpec.dlq``): the batch runner
  dead-letters a permanent failure itself, with the function's role;
- publishers: ``events:PutEvents`` on the stage's bus only, and only with the
  sources of the events they publish (``events:source``, from the contracts'
  ``EVENT_SOURCES``): a compromised function cannot pass for another service.
  Functions that publish nothing (the wallet opener, the wallets and OCM DLQ
  reconcilers, which never compensate) get no ``PutEvents`` at all;
- secrets: ``secretsmanager:GetSecretValue`` on exactly the secrets the function's
  own environment names by id (every ``*_SECRET_ID`` setting, per function in
  ``.chalice/config.json``): the env and the grant come from one place, so they
  cannot drift. The authorizer's env names only the public-keys secret, so its
  role cannot read the signing key;
- DLQ reconcilers: send back to the source queue they re-drive to;
- the schedule functions: send to ``ocm-sync-dlq``, the on-failure destination
  of their async invoke config (Lambda delivers it with the function's role).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.contracts.events import (
    BILLING_FAILED,
    EVENT_SOURCES,
    INVOICE_GENERATED,
    OCM_SYNC_COMPLETED,
    PAYMENT_COMPLETED,
    PAYMENT_FAILED,
    USER_REGISTERED,
)
from chalicelib.sections import StageSettings
from chalicelib.topology import queue_spec

CHALICE_DIR = Path(__file__).resolve().parents[1] / ".chalice"
POLICY_STAGES = ("dev", "prod")

FUNCTIONS = (
    "authorizer", "auth_resolver", "billing_resolver", "stations_resolver", "billing_consumer", "wallet_opener",
    "reconcile_billing_dlq", "reconcile_wallets_dlq", "reconcile_ocm_sync_dlq", "ocm_sync", "ocm_full_sweep",
)

# function -> (queue it consumes, queue it may send to, events it publishes, may invoke); secrets: secret_ids.
# The consumed queue's DLQ is added to "send" from the topology (send_targets), never written here.
_NEEDS: dict[str, dict[str, Any]] = {
    "authorizer": {},
    "auth_resolver": {"publish": (USER_REGISTERED,)},
    "billing_resolver": {},
    "stations_resolver": {},
    "billing_consumer": {"consume": "billing", "publish": (INVOICE_GENERATED, PAYMENT_COMPLETED, PAYMENT_FAILED)},
    "wallet_opener": {"consume": "wallets"},
    # Only billing-dlq's letters are compensated (chalicelib.dlq.reconciler), with BILLING_FAILED.
    "reconcile_billing_dlq": {"consume": "billing-dlq", "send": "billing", "publish": (BILLING_FAILED,)},
    "reconcile_wallets_dlq": {"consume": "wallets-dlq", "send": "wallets"},
    # No source queue to re-drive to (chalicelib.dlq.letters.source_queue_of): it records only.
    "reconcile_ocm_sync_dlq": {"consume": "ocm-sync-dlq"},
    "ocm_sync": {"send": "ocm-sync-dlq", "publish": (OCM_SYNC_COMPLETED,)},
    "ocm_full_sweep": {"send": "ocm-sync-dlq", "publish": (OCM_SYNC_COMPLETED,)},
}


def published_sources(function: str) -> list[str]:
    """The bus sources ``function`` may put: those of the events it publishes, nothing else."""
    return sorted({EVENT_SOURCES[event_type] for event_type in _NEEDS[function].get("publish", ())})


def secret_ids(settings: StageSettings) -> list[str]:
    """The secrets ``settings`` name by id: the values of every ``*_SECRET_ID`` setting that is set."""
    return sorted({value for env, value in settings.by_variable().items() if env.endswith("_SECRET_ID") and value})


def secret_arn(secret_id: str) -> str:
    # Secrets Manager appends "-" and six random characters to every secret ARN.
    return f"arn:aws:secretsmanager:*:*:secret:{secret_id}-??????"


def policy_file_name(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def _queue_arn(settings: StageSettings, short: str) -> str:
    return f"arn:aws:sqs:*:*:{settings.core.queue_name(short)}"


def send_targets(function: str) -> list[str]:
    """Queues ``function`` may send to: its own ``send`` and the DLQ of the queue it consumes.

    The DLQ comes from ``chalicelib.topology`` because the batch runner dead-letters by the
    same ``QueueSpec.dlq``: the grant follows the runtime, so the two cannot drift.
    """
    needs = _NEEDS[function]
    targets = [needs["send"]] if needs.get("send") else []
    consumed = needs.get("consume")
    if consumed and (dlq := queue_spec(consumed).dlq) is not None:
        targets.append(dlq)
    return sorted(set(targets))


def policy_document(settings: StageSettings, function: str) -> dict[str, Any]:
    """The IAM policy for ``function`` in the stage of ``settings``; ``settings`` as that function sees them.

    Pass :func:`stage_settings` with ``function``: stage-level settings name no secret, so the
    policy would get no secret grant.
    """
    needs = _NEEDS[function]
    lambda_name = settings.core.resource_name(function)
    log_group = f"arn:aws:logs:*:*:log-group:/aws/lambda/{lambda_name}"
    statements: list[dict[str, Any]] = [
        {"Sid": "OwnLogGroup", "Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": [log_group]},
        {"Sid": "OwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [f"{log_group}:*"]},
    ]
    if needs.get("consume"):
        statements.append({
            "Sid": "ConsumeQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Resource": [_queue_arn(settings, needs["consume"])],
        })
    if send_targets(function):
        statements.append({
            "Sid": "SendToQueue", "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Resource": [_queue_arn(settings, short) for short in send_targets(function)],
        })
    if needs.get("publish"):
        statements.append({"Sid": "PublishToBus", "Effect": "Allow", "Action": ["events:PutEvents"],
                           "Resource": [f"arn:aws:events:*:*:event-bus/{settings.core.event_bus_name}"],
                           "Condition": {"StringEquals": {"events:source": published_sources(function)}}})
    if secret_ids(settings):
        statements.append({"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [secret_arn(secret_id) for secret_id in secret_ids(settings)]})
    if needs.get("invoke"):
        target = settings.core.resource_name(needs["invoke"])
        statements.append({"Sid": "InvokeForRedrive", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                           "Resource": [f"arn:aws:lambda:*:*:function:{target}"]})
    return {"Version": "2012-10-17", "Statement": statements}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def stage_settings(stage: str, chalice_dir: Path = CHALICE_DIR, function: str | None = None) -> StageSettings:
    """Settings as the stage's Lambdas (or ``function``) see them: config.json environment over the defaults."""
    from appsync.deploy import settings_for_stage

    return settings_for_stage(stage, chalice_dir, base_env={}, function=function)


def expected_files(chalice_dir: Path = CHALICE_DIR) -> dict[str, str]:
    out: dict[str, str] = {}
    for stage in POLICY_STAGES:
        for function in FUNCTIONS:
            settings = stage_settings(stage, chalice_dir, function)
            out[policy_file_name(stage, function)] = render(policy_document(settings, function))
    return out


def stale_files(chalice_dir: Path = CHALICE_DIR) -> list[str]:
    """Policy files that are missing or differ from what the current config implies."""
    stale = []
    for name, text in expected_files(chalice_dir).items():
        path = chalice_dir / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appsync.policies", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any policy file is stale; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: .chalice/{name}")
        return 1 if stale else 0
    for name, text in expected_files().items():
        path = CHALICE_DIR / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote .chalice/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
