"""What the event backbone consists of, declared once.

The runtime (the batch runner, the reconcilers), the local stack and the deploy
step all read this: queue names, redrive, retention, visibility, which
detail-types route to which queue, and which Chalice function consumes which
queue. It lives in ``chalicelib`` because the Lambdas need it at run time and
Chalice packages nothing else. Change it here and everything follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import CoreSettings
from chalicelib.contracts.events import SESSION_ENDED, USER_REGISTERED, trusted_sources

# Function timeouts (seconds); .chalice/config.json must say the same (a test ties them).
# A queue's visibility timeout is 6x its consumer's timeout, as AWS recommends for SQS triggers.
FUNCTION_TIMEOUTS = {
    "billing_consumer": 60,
    "wallet_opener": 30,
    "reconcile_billing_dlq": 60,
    "reconcile_wallets_dlq": 60,
    "reconcile_ocm_sync_dlq": 60,
    "ocm_sync": 300,
    "ocm_full_sweep": 900,
}

SOURCE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueSpec:
    short: str
    consumer: str | None
    dlq: str | None = None
    detail_types: tuple[str, ...] = ()
    batch_size: int = 10

    @property
    def is_dlq(self) -> bool:
        return self.short.endswith("-dlq")

    def visibility_timeout(self) -> int:
        if self.consumer is None:
            return 30
        return FUNCTION_TIMEOUTS[self.consumer] * 6

    def retention(self) -> int:
        return DLQ_RETENTION_SECONDS if self.is_dlq else SOURCE_RETENTION_SECONDS

    def accepted_sources(self, settings: CoreSettings) -> dict[str, str]:
        """Detail-type -> the one source this queue takes it from; empty for a DLQ.

        The bus rule feeding the queue and the batch runner consuming it both read this,
        so an event that reaches the queue some other way is refused on the same terms.
        """
        trusted = trusted_sources(settings.session_event_source)
        return {detail_type: trusted[detail_type] for detail_type in self.detail_types}


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("billing-dlq", consumer="reconcile_billing_dlq"),
    QueueSpec("wallets-dlq", consumer="reconcile_wallets_dlq"),
    QueueSpec("ocm-sync-dlq", consumer="reconcile_ocm_sync_dlq"),
    QueueSpec("billing", consumer="billing_consumer", dlq="billing-dlq", detail_types=(SESSION_ENDED,)),
    QueueSpec("wallets", consumer="wallet_opener", dlq="wallets-dlq", detail_types=(USER_REGISTERED,)),
)

QUEUE_SHORT_NAMES = tuple(q.short for q in QUEUES)


def queue_spec(short: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.short == short:
            return spec
    raise KeyError(f"unknown queue {short!r}; expected one of {', '.join(QUEUE_SHORT_NAMES)}")


def accepted_sources(short: str, settings: CoreSettings) -> dict[str, str]:
    """The queue's detail-type -> trusted source map; empty for a DLQ or a queue not in the topology."""
    try:
        return queue_spec(short).accepted_sources(settings)
    except KeyError:
        return {}


def rule_name(settings: CoreSettings, queue: QueueSpec) -> str:
    """The bus rule feeding ``queue``: ``<app>-<stage>-to-<short>``, by the same rule as the queue's name."""
    return settings.resource_name(f"to-{queue.short}")
