# Two commands do all set-up: `make run` (local stack) and `make test` (whole suite).
# Both create .venv, install pinned requirements and build the embedded store
# (FerretDB v1.24.2 from the Go module proxy) when missing; both are safe to re-run.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FERRETDB := .local/bin/ferretdb

.PHONY: run test lint ferretdb venv bench chaos contracts clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# `go install .../cmd/ferretdb@v1.24.2` builds a binary that panics at start (the
# module zip lacks build/version/version.txt), so tools/ferretdb wraps the
# embeddable package (tools/ferretdb/main.go); build.sh also patches FerretDB's
# _id lookups to use the _id index (see the script).
$(FERRETDB): tools/ferretdb/main.go tools/ferretdb/go.mod tools/ferretdb/go.sum tools/ferretdb/build.sh
	@command -v go >/dev/null 2>&1 || { echo "need Go (1.24+) on PATH to build FerretDB"; exit 1; }
	tools/ferretdb/build.sh $(FERRETDB)

ferretdb: $(FERRETDB)

run: $(STAMP) $(FERRETDB)
	$(PY) -m devstack

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) $(FERRETDB) lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

contracts: $(STAMP)
	$(PY) -m chalicelib.contracts.jsonschema

bench: $(STAMP) $(FERRETDB)
	$(PY) -m bench.run $(BENCH_ARGS)

# Chaos run on its own local stack (faults on); exits non-zero on any broken invariant.
# Defaults: 200 users, 10,000 deliveries; smaller: make chaos CHAOS_ARGS="--events 2500"
# (see "Proof under load and faults" in README.md).
CHAOS_ARGS ?=
chaos: $(STAMP) $(FERRETDB)
	$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
