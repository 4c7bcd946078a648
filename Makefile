# Two commands do all set-up: `make run` (local stack) and `make test` (whole suite).
# Both create .venv, install pinned requirements and build the embedded store
# (mongo-java-server 1.47.0 from Maven Central) when missing; both are safe to re-run.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MONGO_JAR := .local/mongo-java-server/embedded-mongo-1.jar

.PHONY: run test lint mongo-java-server venv bench chaos contracts clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The embedded MongoDB: mongo-java-server behind a launcher of a few lines
# (tools/mongo-java-server), built with Maven into .local/mongo-java-server.
$(MONGO_JAR): tools/mongo-java-server/pom.xml tools/mongo-java-server/src/main/java/jucr/embedded/Launcher.java
	@command -v mvn >/dev/null 2>&1 || { echo "need Maven and Java 17+ on PATH to build the embedded MongoDB"; exit 1; }
	mvn -q -B -f tools/mongo-java-server/pom.xml package
	@test -f $(MONGO_JAR)

mongo-java-server: $(MONGO_JAR)

run: $(STAMP) $(MONGO_JAR)
	$(PY) -m devstack

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) $(MONGO_JAR) lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

contracts: $(STAMP)
	$(PY) -m chalicelib.contracts.jsonschema

bench: $(STAMP) $(MONGO_JAR)
	$(PY) -m bench.run $(BENCH_ARGS)

# Chaos run on its own local stack (faults on); exits non-zero on any broken invariant.
# Defaults: 200 users, 10,000 deliveries; smaller: make chaos CHAOS_ARGS="--events 2500"
# (see "Proof under load and faults" in README.md).
CHAOS_ARGS ?=
chaos: $(STAMP) $(MONGO_JAR)
	$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
