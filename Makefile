# Two commands do all set-up: `make run` (local stack) and `make test` (whole suite).
# Both create .venv, install pinned requirements and build what they need when missing
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

.PHONY: run test lint mongo-java-server venv bench chaos contracts clean graphiql bench-realtime lambda-rie lambda-runtime package

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
	$(PY) -m pip install --quiet --disable-pip-version-check --target .local/lambda-runtime -r requirements-lambda-runtime.txt
	touch $(LAMBDA_RUNTIME)

lambda-runtime: $(LAMBDA_RUNTIME)

# What `chalice deploy` uploads: deployment.zip (app.py, chalicelib, wheels of requirements.txt) and sam.json.
$(PACKAGE_ZIP): $(STAMP) app.py requirements.txt .chalice/config.json $(shell find chalicelib -name '*.py' -o -name '*.json')
	AWS_DEFAULT_REGION=eu-central-1 $(VENV)/bin/chalice package --stage prod .local/package
	touch $(PACKAGE_ZIP)

package: $(PACKAGE_ZIP)

# LOCAL_LAMBDAS=package runs every function from the package under the emulator.
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
