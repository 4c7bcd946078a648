# Two commands do all set-up: `make run` (local stack) and `make test` (whole suite).
# Both create .venv, install the hash-locked requirements and build what they need when missing
# (the embedded MongoDB with Maven, GraphiQL with npm, and for the tests the Lambda emulator
# with Go, the runtime client and the deployment package); both are safe to re-run.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MONGO_JAR := .local/mongo-java-server/embedded-mongo-1.jar
GRAPHIQL := .local/graphiql/node_modules/graphiql/graphiql.min.js
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE := .local/bin/.aws-lambda-rie@$(RIE_VERSION)
LAMBDA_RUNTIME := .local/lambda-runtime/.installed
PACKAGE_ZIP := .local/package/deployment.zip
LAMBDA_TOOLS := $(RIE) $(LAMBDA_RUNTIME) $(PACKAGE_ZIP)

.PHONY: run test lint mongo-java-server venv bench chaos contracts clean graphiql bench-realtime lambda-rie lambda-runtime package lock audit

# Every install is from a lock (requirements*.txt, written by `make lock` from the pins in
# requirements*.in) with --require-hashes: a file whose hash differs from the lock's, or a
# dependency the lock lacks, stops the install instead of landing unchecked.
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The embedded MongoDB: mongo-java-server behind a launcher of a few lines
# (tools/mongo-java-server), built with Maven into .local/mongo-java-server.
$(MONGO_JAR): tools/mongo-java-server/pom.xml tools/mongo-java-server/src/main/java/jucr/embedded/Launcher.java
	@command -v mvn >/dev/null 2>&1 || { echo "need Maven and Java 17+ on PATH to build the embedded MongoDB"; exit 1; }
	mvn -q -B -f tools/mongo-java-server/pom.xml package
	@test -f $(MONGO_JAR)

mongo-java-server: $(MONGO_JAR)

# The AWS Lambda Runtime Interface Emulator, a Go module served by the module proxy as a
# pseudo-version (pinned above; the stamp's name carries it, so a new pin rebuilds).
$(RIE):
	@command -v go >/dev/null 2>&1 || { echo "need Go 1.26+ on PATH to build the Lambda emulator"; exit 1; }
	GOBIN=$(CURDIR)/.local/bin go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	touch $(RIE)

lambda-rie: $(RIE)

# The Lambda runtime client (awslambdaric, pinned) in a folder of its own: the functions see it
# beside the package, never the venv.
$(LAMBDA_RUNTIME): requirements-lambda-runtime.txt $(STAMP)
	rm -rf .local/lambda-runtime
	$(PIP_INSTALL) --target .local/lambda-runtime -r requirements-lambda-runtime.txt
	touch $(LAMBDA_RUNTIME)

lambda-runtime: $(LAMBDA_RUNTIME)

# What `chalice deploy` uploads: deployment.zip (app.py, chalicelib, wheels of requirements.txt) and sam.json.
# chalice reads the hashed lock itself, then fetches Lambda-compatible (manylinux) wheels by name in
# further pip calls; the lock as a constraint file with hashes required holds those to its hashes too.
$(PACKAGE_ZIP): $(STAMP) app.py requirements.txt .chalice/config.json $(shell find chalicelib -name '*.py' -o -name '*.json')
	PIP_REQUIRE_HASHES=1 PIP_CONSTRAINT=$(CURDIR)/requirements.txt AWS_DEFAULT_REGION=eu-central-1 \
	  $(VENV)/bin/chalice package --stage prod .local/package
	touch $(PACKAGE_ZIP)

package: $(PACKAGE_ZIP)
# LOCAL_LAMBDAS=package runs every function from the package under the emulator.

# Refresh the locks after editing a requirements*.in: keeps every pin it can, adds what the edit needs,
# and hashes every file of each release (the manylinux wheels chalice packages included).
# `make lock LOCK_ARGS=--upgrade` moves the transitive pins to the newest releases the direct pins allow.
# Resolved for Linux and Python 3.11, as CI and Lambda run. The order matters: each lock constrains the
# next (Lambda code -> checkout -> runtime client), so all three agree on every shared package.
LOCK_ARGS ?=
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(STAMP)
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-lambda-runtime.txt requirements-lambda-runtime.in

# Known vulnerabilities in every locked package (the checkout's lock holds the Lambdas' too), from
# pip-audit's default service, PyPI's JSON API; hash-checked, with no pip resolution. Not in `test`:
# it needs that service online. Exit 1: vulnerabilities (or another failure); exit 2: the service did
# not answer, so nothing was audited (here, where only the package index is reachable, it does not).
AUDIT_LOG := .local/audit.log
audit: $(STAMP)
	@mkdir -p .local
	@if $(VENV)/bin/pip-audit --strict --disable-pip --require-hashes --progress-spinner off \
	    -r requirements-dev.txt -r requirements-lambda-runtime.txt >$(AUDIT_LOG) 2>&1; then cat $(AUDIT_LOG); \
	elif grep -q -e 'could not be audited' -e 'ConnectionError' -e 'Max retries exceeded' $(AUDIT_LOG); then \
	  grep -m1 -e 'could not be audited' -e 'Max retries exceeded' $(AUDIT_LOG) >&2; \
	  echo "audit: the vulnerability service (PyPI's JSON API) did not answer from this machine;" \
	    "nothing was audited (full output: $(AUDIT_LOG))" >&2; exit 2; \
	else cat $(AUDIT_LOG); exit 1; fi

# GraphiQL for the local stage, offline: the pinned npm packages (tools/graphiql) vendored into .local.
$(GRAPHIQL): tools/graphiql/package.json tools/graphiql/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need npm (Node 20+) on PATH to vendor GraphiQL"; exit 1; }
	mkdir -p .local/graphiql && cp tools/graphiql/package.json tools/graphiql/package-lock.json .local/graphiql/
	npm ci --prefix .local/graphiql --no-audit --no-fund --silent
	touch $(GRAPHIQL)

graphiql: $(GRAPHIQL)

# aws-amplify v6 in Node against a local stack of its own (wss:// with a self-signed certificate made at
# run time): register, subscribe, SESSION_ENDED, invoice + payment, another user's id refused. Not in `test`.
AMPLIFY_JOURNEY := .local/amplify-journey/node_modules/.installed
$(AMPLIFY_JOURNEY): tools/amplify-journey/package.json tools/amplify-journey/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need npm (Node 20+) on PATH for the amplify journey"; exit 1; }
	mkdir -p .local/amplify-journey && cp tools/amplify-journey/package.json tools/amplify-journey/package-lock.json .local/amplify-journey/
	npm ci --prefix .local/amplify-journey --no-audit --no-fund --silent
	touch $(AMPLIFY_JOURNEY)

.PHONY: amplify-journey
# The scripts are copied beside node_modules on every run: Node resolves ESM imports from the script's folder.
amplify-journey: $(STAMP) $(MONGO_JAR) $(AMPLIFY_JOURNEY)
	cp tools/amplify-journey/run.mjs tools/amplify-journey/journey.mjs .local/amplify-journey/
	node .local/amplify-journey/run.mjs $(CURDIR)

run: $(STAMP) $(MONGO_JAR) $(GRAPHIQL) $(if $(filter package,$(LOCAL_LAMBDAS)),$(LAMBDA_TOOLS))
	$(PY) -m devstack

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) $(MONGO_JAR) $(LAMBDA_TOOLS) $(GRAPHIQL) lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

contracts: $(STAMP)
	$(PY) -m chalicelib.contracts.jsonschema

bench: $(STAMP) $(MONGO_JAR) $(LAMBDA_TOOLS)
	$(PY) -m bench.run $(BENCH_ARGS)

# Put-on-bus -> subscription-delivered latency (p50/p95/p99 over 200 sessions) on its own local stack.
bench-realtime: $(STAMP) $(MONGO_JAR)
	$(PY) -m bench.bench_realtime $(REALTIME_BENCH_ARGS)

# Chaos run on its own local stack (faults on); exits non-zero on any broken invariant.
# Defaults: 200 users, 10,000 deliveries; smaller: make chaos CHAOS_ARGS="--events 2500"
# (see "Proof under load and faults" in README.md).
CHAOS_ARGS ?=
chaos: $(STAMP) $(MONGO_JAR)
	$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
