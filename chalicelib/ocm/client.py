"""HTTP client for OpenChargeMap ``/poi``, with retries the API's limits call for.

urllib3 ``Retry`` does the back-off: exponential with jitter for 429 and 5xx
and connection errors, honouring ``Retry-After``. A 401/403 means a bad or
missing key: retrying cannot help, so it raises :class:`OcmAuthError` at once.
Paging is by ``sortby=id_asc`` + ``greaterthanid``: ids are stable, so a page
boundary never skips or repeats a record even while OCM edits data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

USER_AGENT = "jucr-ocm-sync/1.0 (+https://jucr.de; EV charging mirror)"
RETRY_STATUSES = (429, 500, 502, 503, 504)


class OcmError(Exception):
    """Base of OpenChargeMap client failures."""


class OcmAuthError(OcmError):
    """The API refused the key (401/403): fix ``OCM_API_KEY`` (or its secret); not retried."""


class OcmUnavailable(OcmError):
    """Still failing (5xx, 429, network) after every retry: try the next run."""


class OcmProtocolError(OcmError):
    """The API answered with something that is not a JSON list of POIs."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    # Resolved by the entry (``OCM_API_KEY`` or its secret); kept out of repr so a logged config shows no key.
    api_key: str = field(default="", repr=False)
    timeout_seconds: float = 30.0
    retries: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.25
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedIdentity:
    """Which feed a checkpoint belongs to: the API URL and the country filter, nothing secret.

    A checkpoint says "everything modified before T from this feed is stored"; read
    against another URL or country set it would skip all of that feed's older records.
    """

    key: str
    url: str
    countries: tuple[str, ...]


def feed_identity(base_url: str, countries: Sequence[str] = ()) -> FeedIdentity:
    """Normalise URL and countries so the same feed always gets the same key.

    Host case, a trailing slash, parameter order and country order or case do not
    change which records come back, so they do not change the key. Credentials (user
    info, a ``key`` parameter) are dropped: rotating a key is not a new feed, and the
    checkpoint document must not hold it.
    """
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if k.lower() != "key"))
    url = urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), query, ""))
    wanted = tuple(sorted({c.strip().upper() for c in countries if c.strip()}))
    digest = hashlib.sha256(json.dumps([url, wanted]).encode()).hexdigest()[:16]
    return FeedIdentity(key=digest, url=url, countries=wanted)


def format_since(value: dt.datetime) -> str:
    """``modifiedsince`` as OCM parses it; an unparseable value would be ignored silently, so we build it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OcmClient:
    """Fetches pages of POIs; one ``requests.Session`` (connection reuse) per client."""

    def __init__(self, config: ClientConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self.session = session or requests.Session()
        retry = Retry(
            total=config.retries,
            connect=config.retries,
            read=config.retries,
            status=config.retries,
            backoff_factor=config.backoff_factor,
            backoff_max=config.backoff_max,
            backoff_jitter=config.backoff_jitter,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if config.api_key:
            self.session.headers["X-API-Key"] = config.api_key
        self.requests_made = 0
        self.identity = feed_identity(config.base_url, config.countries)

    def params(self, *, after_id: int, page_size: int, modified_since: dt.datetime | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "output": "json",
            "compact": "true",
            "verbose": "false",
            "opendata": "true",
            "sortby": "id_asc",
            "greaterthanid": after_id,
            "maxresults": page_size,
        }
        if modified_since is not None:
            params["modifiedsince"] = format_since(modified_since)
        if self.config.countries:
            params["countrycode"] = ",".join(self.config.countries)
        return params

    def fetch_page(self, *, after_id: int, page_size: int, modified_since: dt.datetime | None = None) -> list[dict]:
        """POIs with ``ID > after_id`` in id order, at most ``page_size`` of them."""
        url = self.config.base_url.rstrip("/") + "/poi"
        self.requests_made += 1
        try:
            response = self.session.get(
                url,
                params=self.params(after_id=after_id, page_size=page_size, modified_since=modified_since),
                timeout=(min(10.0, self.config.timeout_seconds), self.config.timeout_seconds),
            )
        except requests.RequestException as exc:
            raise OcmUnavailable(f"OpenChargeMap unreachable after retries: {type(exc).__name__}") from None
        return _records(response)

    def close(self) -> None:
        self.session.close()


def _records(response: requests.Response) -> list[dict]:
    status = response.status_code
    if status in (401, 403):
        raise OcmAuthError(
            f"OpenChargeMap refused the API key (HTTP {status}): set OCM_API_KEY (or the secret "
            "OCM_API_KEY_SECRET_ID names) to a valid key"
        )
    if status in RETRY_STATUSES:
        raise OcmUnavailable(f"OpenChargeMap still answers HTTP {status} after retries")
    if status != 200:
        raise OcmProtocolError(f"OpenChargeMap answered HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        raise OcmProtocolError("OpenChargeMap answered with a body that is not JSON") from None
    if not isinstance(body, list):
        raise OcmProtocolError("OpenChargeMap answered with JSON that is not a list of POIs")
    return body


def countries_from_setting(value: str) -> Sequence[str]:
    return tuple(c.strip().upper() for c in value.split(",") if c.strip())
