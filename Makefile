# riskstream: `make run` and `make test` are all a new user needs. `make` alone lists targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help setup run test test-fast test-unit bench bench-scale stop status lint format lock clean localstack localstack-lock

help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

setup: ## check Python/Java, create .venv, install locked deps, fetch S3A jars (idempotent)
	@infra/bootstrap.sh

run: setup ## start the local cloud and services, provision, run the pipeline end to end
	@$(BIN)/riskstream run

# Two workers (pytest-xdist): a test mostly waits on its servers, so one process leaves a core
# idle. Each worker starts its own servers on free ports; worksteal keeps both busy to the end.
TEST_WORKERS ?= 2

test: ## run every test (unit, integration, e2e) against real local servers, on two workers
	@infra/bootstrap.sh --test
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20 $(PYTEST_ARGS)

test-fast: setup ## run only the unit tests (no server, no JVM), on two workers: about a minute
	@$(BIN)/pytest -m unit -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-unit: test-fast ## the same as test-fast

bench: setup ## run every benchmark and write benchmarks/results.{md,json} (the 100x portfolio: bench-scale)
	@$(BIN)/python benchmarks/run_all.py

# About an hour of both cores and several GB of disk (RISKSTREAM_SCALE_DIR): not part of `bench`.
# RISKSTREAM_SCALE_ACCOUNTS="2000,20000" runs other sizes (rows named by the multiple of 2,000).
bench-scale: setup ## the 100x portfolio end to end (200,000 accounts beside 20,000): scale.* rows merged into the results
	@$(BIN)/python benchmarks/run_all.py --only scale --merge

stop: ## stop every service we started (cloud, MLflow, Airflow, API, dashboard, live scorer)
	@if [ -x $(BIN)/riskstream ]; then $(BIN)/riskstream stop; else echo "nothing installed, nothing to stop"; fi

status: ## say which services run where
	@$(BIN)/riskstream status

lint: setup ## ruff lint and format check, the import contracts, dead code (vulture), mypy on the pure modules
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/vulture && $(BIN)/mypy riskstream/settings.py riskstream/names.py riskstream/events.py riskstream/featuredefs.py riskstream/progress.py riskstream/checks.py riskstream/background.py serving/rawfeatures.py serving/livestate.py pipeline/asl.py ingestion/records.py ingestion/synthetic.py training/metrics.py training/models.py serving/scoring.py serving/monitoring.py etl/session_protocol.py modelkinds

format: setup ## apply ruff's formatting and safe fixes
	@$(BIN)/ruff format . && $(BIN)/ruff check --fix .

lock: ## re-resolve uv.lock after changing dependencies in pyproject.toml
	@$(BIN)/uv lock

localstack: setup ## install LocalStack (host mode, no Docker) into its own environment, once per lock
	@$(BIN)/riskstream localstack install

# LocalStack 4.9.2's dependencies as they were in its release month (docs/adr/0009-localstack-host-mode.md)
localstack-lock: ## re-resolve infra/localstack-requirements.txt from infra/localstack-requirements.in
	@$(BIN)/uv pip compile --quiet --universal --generate-hashes --no-header --python-version 3.11 \
	  --exclude-newer 2025-10-20 infra/localstack-requirements.in -o infra/localstack-requirements.txt

clean: stop ## remove .venv and the fetched jars (state in ~/.local/state/riskstream stays)
	rm -rf $(VENV) .jars .pytest_cache .ruff_cache .mypy_cache .hypothesis
