"""The store's settings: which MongoDB, which database, how long to wait for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, secret_name, setting


@dataclass(frozen=True)
class StoreSettings(Section):
    """Read by every function that touches the database (all but the authorizer)."""

    name: ClassVar[str] = "store"

    # For local use and tests; wins over the secret id. Deployed stages keep the URI in Secrets Manager.
    mongodb_uri: str = setting("MONGODB_URI", "", secret=True)
    # A Secrets Manager name, not a value (so not secret).
    mongodb_uri_secret_id: str = setting("MONGODB_URI_SECRET_ID", "", secret_name())
    mongodb_db: str = setting("MONGODB_DB", "jucr")
    mongodb_timeout_ms: int = setting("MONGODB_TIMEOUT_MS", "5000", integer(100, 60000))

    @property
    def embedded_store(self) -> bool:
        """Neither a URI nor a secret id: the local stack's embedded MongoDB."""
        return not self.mongodb_uri and not self.mongodb_uri_secret_id
