# RouteIQ developer commands. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint format docs bench bench-messages bench-routing services browser ui ui-types clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

## Serve config/demo.yaml on port 4000 (mock deployments: no API keys, no network).
run: $(STAMP)
	$(BIN)/routeiq serve --config config/demo.yaml --port 4000

## Lint, type-check and run the whole suite (unit + end-to-end against real processes).
test: $(STAMP) services browser
	$(BIN)/ruff check routeiq tests benchmarks
	$(BIN)/ruff format --check routeiq tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=25

lint: $(STAMP)
	$(BIN)/ruff check routeiq tests benchmarks
	$(BIN)/ruff format --check routeiq tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix routeiq tests benchmarks
	$(BIN)/ruff format routeiq tests benchmarks

## Regenerate docs/configuration.md from the settings model.
docs: $(STAMP)
	$(BIN)/python -m routeiq.config_docs > docs/configuration.md

## Throughput, latency, streaming and memory, as ratios to a floor measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## The Messages API's CPU per request next to the OpenAI passthrough: translated and Anthropic-wire.
bench-messages: $(STAMP)
	$(BIN)/python -m benchmarks.messages $(ARGS)

## Routing quality (APGR, CPT, AUROC) on the vendored RouteLLM MMLU data, plus classify latency.
## ARGS=--quick skips the slow routers; ARGS="--data data/benchmarks/routellm-gsm8k-a" another domain.
bench-routing: $(STAMP)
	$(BIN)/python -m benchmarks.routing $(ARGS)

## Rebuild the admin UI (ui/) into routeiq/admin_ui/static, with fresh API types (needs node and npm).
## The build is committed, so `make run` and installs need no node; a test fails when it is stale.
ui: $(STAMP)
	$(BIN)/python scripts/ui.py build

## Regenerate ui/src/api/schema.d.ts from the app's OpenAPI schema (after changing an admin route).
ui-types: $(STAMP)
	cd ui && npm ci --no-audit --no-fund
	$(BIN)/python scripts/ui.py types

## Install Debian's chromium for the browser tests (tests/browser) when it is missing.
browser:
	@scripts/browser.sh

## Start Redis and PostgreSQL on 127.0.0.1 if they are not already up.
services:
	@scripts/services.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
