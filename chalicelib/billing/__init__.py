"""Billing: tariffs, invoices, wallet ledger and the SESSION_ENDED / USER_REGISTERED consumers.

Other domains reach billing through events, contracts and the modules named in
``PUBLISHED`` (tests/unit/foundation/test_domain_boundaries.py enforces it);
everything else here is billing's to change.
"""

# The modules of this package another domain may import.
PUBLISHED: tuple[str, ...] = ("queries",)
