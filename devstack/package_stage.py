"""A throwaway prod-like stage for the functions of ``deployment.zip``: the package suite and its benchmark.

Everything the prod stage reaches, on 127.0.0.1: ``moto_server`` (EventBridge, SQS with redrive,
Secrets Manager holding the JWT signing key under the prod stage's ``JWT_KEY_SECRET_ID``), the
embedded MongoDB and the OpenChargeMap stand-in. The bus and queues are provisioned by the deploy
step's own code (``appsync.infra``) for the names the package's ``sam.json`` uses, so the functions
run with the prod stage's variables and only the endpoints are pointed here. A capture queue behind a
bus rule shows what the functions published.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.events.queues import StageQueues
from devstack.pump import drain_queue, lambda_record, queue_behind_rules

REGION = "eu-central-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}
# Every event type the functions publish, so the capture queue sees each of them.
PUBLISHED = ("USER_REGISTERED", "INVOICE_GENERATED", "PAYMENT_COMPLETED", "PAYMENT_FAILED", "BILLING_FAILED",
             "OCM_SYNC_COMPLETED")
CAPTURE_QUEUE = "package-suite-capture"


@dataclass
class PackageStage:
    """The stand-ins' endpoints and the stage's names; ``function_env`` is what each function gets on top."""

    stage_env: dict[str, str]
    moto_url: str
    mongo_uri: str
    ocm_url: str
    database: str = field(default_factory=lambda: f"pkg_{uuid.uuid4().hex[:10]}")
    standin: Any = None
    log_dir: Path | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _queues: dict[str, StageQueues] = field(default_factory=dict, repr=False)  # by short name, by full name

    @property
    def settings(self):
        from chalicelib.sections import load_stage_settings

        return load_stage_settings({**self.stage_env, **self.function_env()})

    def function_env(self) -> dict[str, str]:
        return {
            "MONGODB_URI": self.mongo_uri, "MONGODB_DB": self.database, "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "OCM_API_URL": self.ocm_url, **CREDENTIALS,
            # Tests and benchmarks look at a re-driven or retried message at once instead of after a back-off.
            "SQS_BACKOFF_BASE_SECONDS": "0", "DLQ_REDRIVE_DELAY_SECONDS": "0",
            # Prod opens wallets empty; the suite's sessions should be paid.
            "WALLET_OPENING_BALANCE": "50.00",
        }

    def client(self, service: str) -> Any:
        import boto3

        if service not in self._clients:
            self._clients[service] = boto3.client(service, endpoint_url=self.moto_url, region_name=REGION,
                                                  aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                                  aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        return self._clients[service]

    def provision(self) -> None:
        """Bus, queues and rules by the deploy step's code; prod's key, pepper and OCM secrets where prod keeps them.

        The ids come from each function's own environment in config.json (what sam.json has); the
        authorizer's public-keys secret is written by the deploy step's code from the signing key.
        ``MONGODB_URI`` in ``function_env`` wins over the functions' store secret id, so a function cut
        off from AWS still reaches the store, as the suite's failure tests need.
        """
        from appsync.deploy import key_secrets, settings_for_stage
        from appsync.infra import Changes, Infra
        from appsync.secrets import ensure_login_pepper, ensure_public_keys
        from chalicelib.auth.keys import KeyRing

        settings = self.settings
        Infra(self.client, settings).apply_messaging()
        keys = key_secrets("prod")
        secrets = self.client("secretsmanager")
        secrets.create_secret(Name=keys.signing_id, SecretString=KeyRing.generate().private_pem())
        ensure_public_keys(self.client, keys, Changes())
        ensure_login_pepper(self.client, keys.pepper_id, Changes())  # the resolver's throttle pepper, as deployed
        ocm = settings_for_stage("prod", base_env={}, function="ocm_sync").ocm.ocm_api_key_secret_id
        secrets.create_secret(Name=ocm, SecretString="package-suite-ocm-key")  # the stand-in checks no key
        queue_behind_rules(self.client, settings.core.event_bus_name, CAPTURE_QUEUE,
                           {CAPTURE_QUEUE: {"detail-type": list(PUBLISHED)}}, "capture")

    def queue_url(self, short: str) -> str:
        """A queue of the stage by short name (``capture``: what the functions published)."""
        if "short" not in self._queues:
            names = self.settings.core.queue_name
            self._queues["short"] = StageQueues(self.client("sqs"),
                                                lambda short: CAPTURE_QUEUE if short == "capture" else names(short))
        return self._queues["short"].url(short)

    def drain(self, short: str) -> list[dict[str, Any]]:
        """Receive and delete everything visible on a queue (``capture`` = what was published)."""
        return drain_queue(self.client("sqs"), self.queue_url(short))

    def published(self) -> list[dict[str, Any]]:
        """The bus events the functions published since the last call (EventBridge events)."""
        return [json.loads(m["Body"]) for m in self.drain("capture")]

    def sqs_event(self, short: str, bodies: Iterable[str], attributes: dict[str, str] | None = None) -> dict:
        """Put ``bodies`` on a queue and receive them back as Lambda's SQS event (real receipt handles)."""
        sqs, url = self.client("sqs"), self.queue_url(short)
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
        sent = [sqs.send_message(QueueUrl=url, MessageBody=b, MessageAttributes=attrs)["MessageId"] for b in bodies]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        messages: dict[str, dict] = {}
        deadline = time.monotonic() + 10
        while len(messages) < len(sent) and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                         MessageAttributeNames=["All"]).get("Messages", []):
                messages[m["MessageId"]] = m
        return {"Records": [lambda_record(messages[i], arn, REGION) for i in sent if i in messages]}


    def deliver(self, function: Any, event: dict) -> dict:
        """Invoke ``function`` (an emulator) with an SQS event; delete what it reports done, as Lambda's poller does.

        The failed records stay in flight until their visibility ends, as in AWS.
        """
        result = function.invoke(event)
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        sqs = self.client("sqs")
        for record in event["Records"]:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=self._url_of(record), ReceiptHandle=record["receiptHandle"])
        return result

    def release(self, records: Iterable[dict]) -> None:
        """Make received records visible again at once (a test cleaning up what a cut-off function kept)."""
        sqs = self.client("sqs")
        for record in records:
            sqs.change_message_visibility(QueueUrl=self._url_of(record), ReceiptHandle=record["receiptHandle"],
                                          VisibilityTimeout=0)

    def _url_of(self, record: dict) -> str:
        if "full" not in self._queues:  # an SQS event names its queue by ARN, whose last part is the name
            self._queues["full"] = StageQueues(self.client("sqs"), lambda name: name)
        return self._queues["full"].url(record["eventSourceARN"].rsplit(":", 1)[1])
