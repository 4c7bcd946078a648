"""Benchmarks and the chaos run: `make bench`, `make chaos` (see docs/readme/proof.md)."""
