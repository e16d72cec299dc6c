# video-library: every task goes through here. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin
SYNCED := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

# The Lambda runtime the layer is built for (serverless.yml: provider.runtime / architecture).
LAMBDA_PYTHON ?= 3.12
LAMBDA_PLATFORM ?= aarch64-manylinux2014
# A Python of the runtime's version compiles the layer's .pyc: on PATH, else a pyenv install (empty if none).
LAYER_PYC_PYTHON ?= $(shell for py in python$(LAMBDA_PYTHON) $$(ls -d $$HOME/.pyenv/versions/$(LAMBDA_PYTHON).*/bin/python$(LAMBDA_PYTHON) \
	2>/dev/null | sort -V | tail -1); do $$py -c '' >/dev/null 2>&1 && echo $$py && break; done)
PYTEST_ARGS ?=
NODE_DEPS := node_modules/.installed

.PHONY: help venv dev demo token invoke openapi schemathesis lint pre-commit test events infra bench bench-save \
	bench-purge bench-coldstart layer package lock clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

$(SYNCED): uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	@# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as on these machines) every import would compile again.
	UV_COMPILE_BYTECODE=1 $(UV) sync --locked --quiet
	@rm -f $(VENV)/.synced-* && touch $@

venv: $(SYNCED) ## Build or refresh .venv from uv.lock

dev: venv ## Run the whole service locally on 127.0.0.1:$PORT (8000) with embedded stand-ins, until Ctrl-C
	@PYTHONUNBUFFERED=1 exec $(BIN)/python -m devtools.local_stack

demo: venv ## The whole story against an embedded stack: generate, webhook, save, sha256 check, purge
	@PYTHONUNBUFFERED=1 $(BIN)/python -m devtools.demo

invoke: venv ## Run one handler on a sample event against the local stack: make invoke FN=purge EVENT=events/purge.json
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ]; then \
		echo "usage: make invoke FN=<function of serverless.yml> EVENT=events/<file>.json" >&2; exit 2; fi
	@$(BIN)/python -m devtools.invoke "$(FN)" "$(EVENT)"

token: venv ## Print a local sign-in token for `make dev` (USER=alice)
	@$(BIN)/python -m devtools.local_jwt $(if $(filter command line,$(origin USER)),$(USER),alice)

lint: venv ## ruff (lint + format) and mypy on the layer and the handlers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pre-commit itself runs through uv (pinned, not a project dependency); its hooks are `make lint`'s, from .venv.
PRE_COMMIT := $(UV) tool run --from 'pre-commit==4.2.0' pre-commit

pre-commit: venv ## Install the git hook that runs `make lint`'s ruff and mypy on every commit (.pre-commit-config.yaml)
	$(PRE_COMMIT) install

# Test files run on TEST_WORKERS processes (pytest-xdist), each file whole on one of them: 6 min instead of 13 on
# 2 cores. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

test: lint ## Lint, then run every test (offline: moto stands in for AWS; TEST_WORKERS=2 processes)
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; exit $$rc

events: venv ## Regenerate events/ from the PiAPI samples in ../shared/piapi
	$(BIN)/python -m devtools.make_events

openapi: venv ## Record the spec's examples from the real handlers, regenerate openapi.json from the code
	$(BIN)/python -m devtools.openapi

schemathesis: venv ## Only the schemathesis run against the local stack (make test runs it too; ~2 min)
	$(BIN)/pytest tests/e2e/test_schemathesis.py $(PYTEST_ARGS)

infra: venv ## Regenerate infra/ (the tables from their models, alarms and dashboard from serverless.yml)
	$(BIN)/python -m devtools.infra
	$(BIN)/python -m devtools.monitoring

bench: bench-save bench-purge bench-coldstart ## Run every benchmark (figures go in the README)

bench-save: venv ## Save to Library on Lambda's CPU share (256-3,008 MB) vs rclone, 100 MiB/1 GiB, http/https (~15 min, root)
	@command -v rclone >/dev/null || (apt-get install -y rclone >/dev/null 2>&1 || \
		(apt-get update >/dev/null && apt-get install -y rclone >/dev/null)) || echo "rclone unavailable: skipped"
	$(BIN)/python -m benchmarks.bench_save $(SAVE_BENCH_ARGS)

bench-purge: venv ## Benchmark the purge against moto in server mode (~15 min; BENCH_ARGS=--quick: ~2 min)
	$(BIN)/python -m benchmarks.bench_purge $(BENCH_ARGS)

# The cold-start benchmark runs the runtime's Python version when there is one here, else the venv's.
COLDSTART_PYTHON ?= $(or $(LAYER_PYC_PYTHON),$(BIN)/python)

bench-coldstart: venv ## Cold start: import time of each handler vs `import boto3`, fresh interpreters (~1 min)
	rm -rf build/bench-layer && mkdir -p build
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --quiet -o build/bench-layer-requirements.txt
	$(UV) pip install --quiet --target build/bench-layer --python $(COLDSTART_PYTHON) --only-binary :all: \
		-r build/bench-layer-requirements.txt
	$(BIN)/python -m benchmarks.bench_coldstart --site build/bench-layer --python $(COLDSTART_PYTHON) $(COLDSTART_ARGS)

layer: venv ## Build the Lambda layer in build/layer from uv.lock, with wheels for the Lambda runtime
	rm -rf build/layer && mkdir -p build/layer/python
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --quiet -o build/layer-requirements.txt
	$(UV) pip install --quiet --target build/layer/python --python-platform $(LAMBDA_PLATFORM) \
		--python-version $(LAMBDA_PYTHON) --only-binary :all: -r build/layer-requirements.txt
	cp -r src/video_library build/layer/python/
	find build/layer -name '__pycache__' -prune -exec rm -rf {} +
	@# Lambda cannot write .pyc under /opt (read-only): without them every cold start compiles the whole layer
	@# (~3x the import time, see README "Benchmarks"). They must come from the runtime's own Python version;
	@# unchecked-hash: the layer never changes once built, and unzipping resets the sources' timestamps.
	@if [ -n "$(LAYER_PYC_PYTHON)" ]; then \
		$(LAYER_PYC_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash build/layer/python >/dev/null \
			|| { echo "layer: compileall with $(LAYER_PYC_PYTHON) failed" >&2; exit 1; }; \
		echo "layer: .pyc compiled by $(LAYER_PYC_PYTHON)"; \
	else echo "layer: no Python $(LAMBDA_PYTHON) here (LAYER_PYC_PYTHON=...): no .pyc, slower cold starts"; fi
	@du -sh build/layer

# osls (package.json / package-lock.json). Install scripts are skipped: osls needs none of them.
$(NODE_DEPS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

package: venv $(NODE_DEPS) layer ## Package offline with osls (moto stands in for AWS), cfn-lint it, check zips and IAM
	$(BIN)/python -m devtools.package_offline --stage ci
	$(BIN)/cfn-lint .serverless/cloudformation-template-update-stack.json
	$(BIN)/python -m devtools.check_package .serverless --manifest build/package-manifest.json

lock: ## Re-resolve uv.lock after changing pyproject.toml
	$(UV) lock

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .serverless .pytest_cache .mypy_cache .ruff_cache .hypothesis
