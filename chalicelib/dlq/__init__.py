"""Dead letters: the reconciler (classify, re-drive, compensate, audit) and the operator's replay tool."""
