"""The OpenChargeMap sync's settings: where the API is, how to page it, how long a run may take.

The schedules are not here: Chalice reads them when ``app.py`` is imported, in every
Lambda, so they are ``chalicelib.config.ScheduleSettings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from chalicelib.config import Section, integer, secret_name, setting


@dataclass(frozen=True)
class OcmSettings(Section):
    """Read by ``ocm_sync``, ``ocm_full_sweep`` and ``./jucr ocm-sync``; the stations resolver needs none."""

    name: ClassVar[str] = "ocm"

    ocm_api_url: str = setting("OCM_API_URL", "https://api.openchargemap.io/v3")
    ocm_api_key: str = setting("OCM_API_KEY", "", secret=True)
    ocm_api_key_secret_id: str = setting("OCM_API_KEY_SECRET_ID", "", secret_name())
    ocm_page_size: int = setting("OCM_PAGE_SIZE", "1000", integer(1000, 10000))
    ocm_overlap_minutes: int = setting("OCM_OVERLAP_MINUTES", "15", integer(0, 1440))
    ocm_timeout_seconds: int = setting("OCM_TIMEOUT_SECONDS", "30", integer(1, 300))
    ocm_retries: int = setting("OCM_RETRIES", "4", integer(3, 5))
    ocm_countries: str = setting("OCM_COUNTRIES", "")
    ocm_time_budget_seconds: int = setting("OCM_TIME_BUDGET_SECONDS", "60", integer(5, 900))
