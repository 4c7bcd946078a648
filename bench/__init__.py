"""Benchmarks and the chaos run: `make bench`, `make chaos` (see "Proof under load and faults" in README.md)."""
