"""Where a sign-in comes from: the caller's network, hashed, from the AppSync resolver event.

The sign-in throttle keys its counts by this source, so it must be an address the
caller cannot choose. AppSync sits behind CloudFront: CloudFront appends the address
it received the request from to ``X-Forwarded-For``, and AppSync's origin appends the
CloudFront node after it (``"<viewer>, <cloudfront node>"``). Anything before the
viewer came from the client and is ignored, so writing a header of your own changes
nothing. IPv6 callers are grouped by their /64 (one subscriber's prefix), so cycling
addresses inside a prefix does not buy fresh counts.

The result is a SHA-256 of the network, so the raw address is never passed around.
That hash alone is pseudonymous, not anonymous (the IPv4 space is small enough to
enumerate), so it is never stored or logged either: the throttle's document ids are an
HMAC of it under a secret pepper (``chalicelib/auth/throttle.py``), and they expire.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any

# Entries AWS appends after the viewer's address: AppSync's origin adds the CloudFront node.
AWS_HOPS_AFTER_VIEWER = 1
IPV6_PREFIX = 64
# One bucket for a present but unreadable address: AWS writes these, so it should never fill.
_UNREADABLE = "unreadable"


def source_of(event: Any) -> str | None:
    """The hashed network of the caller of an AppSync resolver event; ``None`` when it names none."""
    if not isinstance(event, Mapping):
        return None
    request = event.get("request")
    headers = request.get("headers") if isinstance(request, Mapping) else None
    forwarded = headers.get("x-forwarded-for") if isinstance(headers, Mapping) else None
    if isinstance(forwarded, str) and forwarded.strip():
        entries = [entry.strip() for entry in forwarded.split(",")]
        viewer = entries[-(AWS_HOPS_AFTER_VIEWER + 1)] if len(entries) > AWS_HOPS_AFTER_VIEWER else entries[0]
        return hash_network(viewer)
    identity = event.get("identity")
    addresses = identity.get("sourceIp") if isinstance(identity, Mapping) else None
    if isinstance(addresses, list) and addresses and isinstance(addresses[-1], str):
        return hash_network(addresses[-1])  # the TCP peer AppSync saw, appended after any header entries
    return None


def hash_network(address: str) -> str:
    """SHA-256 of the address's network (IPv4 /32, IPv6 /64), so equal sources get equal keys.

    Unkeyed on purpose: it only groups addresses; what is stored is keyed by ``throttle._keyed``.
    """
    return hashlib.sha256(f"source:{_network(address)}".encode()).hexdigest()


def _network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return _UNREADABLE
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)
