"""``python -m bench.chaos`` (``make chaos``): one chaos run, its report, exit 1 on any failed check."""

from bench.chaos import main

raise SystemExit(main())
