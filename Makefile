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
PYTEST_ARGS ?=

.PHONY: help venv lint test events infra bench bench-save bench-purge layer lock clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

$(SYNCED): uv.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(UV) sync --locked --quiet
	@rm -f $(VENV)/.synced-* && touch $@

venv: $(SYNCED) ## Build or refresh .venv from uv.lock

lint: venv ## ruff (lint + format) and mypy on the layer and the handlers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint ## Lint, then run every test (offline: moto stands in for AWS)
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; exit $$rc

events: venv ## Regenerate events/ from the PiAPI samples in ../shared/piapi
	$(BIN)/python -m devtools.make_events

infra: venv ## Regenerate infra/videos-table.json from the PynamoDB model
	$(BIN)/python -m devtools.infra

bench: bench-save bench-purge ## Run every benchmark (figures go in the README)

bench-save: venv ## Benchmark Save to Library: 100 MiB and 1 GiB vs naive and rclone (~3 min; installs rclone)
	@command -v rclone >/dev/null || (apt-get install -y rclone >/dev/null 2>&1 || \
		(apt-get update >/dev/null && apt-get install -y rclone >/dev/null)) || echo "rclone unavailable: skipped"
	$(BIN)/python -m benchmarks.bench_save $(SAVE_BENCH_ARGS)

bench-purge: venv ## Benchmark the purge against moto in server mode (~15 min; BENCH_ARGS=--quick: ~2 min)
	$(BIN)/python -m benchmarks.bench_purge $(BENCH_ARGS)

layer: venv ## Build the Lambda layer in build/layer from uv.lock, with wheels for the Lambda runtime
	rm -rf build/layer && mkdir -p build/layer/python
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --quiet -o build/layer-requirements.txt
	$(UV) pip install --quiet --target build/layer/python --python-platform $(LAMBDA_PLATFORM) \
		--python-version $(LAMBDA_PYTHON) --only-binary :all: -r build/layer-requirements.txt
	cp -r src/video_library build/layer/python/
	find build/layer -name '__pycache__' -prune -exec rm -rf {} +
	@du -sh build/layer

lock: ## Re-resolve uv.lock after changing pyproject.toml
	$(UV) lock

clean: ## Remove build output and caches (keeps .venv)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
