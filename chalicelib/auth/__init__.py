"""Auth: passwords, tokens, register/login/refresh, and the AppSync Lambda authorizer.

Kept free of imports on purpose: ``chalicelib.auth.entry`` is imported by the
authorizer Lambda, and anything imported here would be paid for on its cold start.
Other domains reach auth through events and contracts only: ``PUBLISHED`` is empty
(tests/unit/foundation/test_domain_boundaries.py enforces it).
"""

# The modules of this package another domain may import.
PUBLISHED: tuple[str, ...] = ()
