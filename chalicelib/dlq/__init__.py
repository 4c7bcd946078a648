"""Dead letters: the reconciler (classify, re-drive, compensate, audit) and the operator's replay tool.

Other domains reach this one through events and contracts only: ``PUBLISHED`` is
empty (tests/unit/foundation/test_domain_boundaries.py enforces it).
"""

# The modules of this package another domain may import.
PUBLISHED: tuple[str, ...] = ()
