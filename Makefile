# The two commands: `make run` (the product) and `make test` (the suite). Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export TOKENIZERS_PARALLELISM ?= false
# The suite never reaches the Hub (tests/fake_hub.py stands in for it).
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_EVALUATE_OFFLINE=1

.PHONY: setup browser run worker demo demo-fast lint test bench clean

setup: $(STAMP)

# torch first, from its pin, so that nothing else pulls a multi-GB CUDA build; then the rest.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$$(grep -E '^torch==' requirements.txt)"
	$(PIP) install -q -r requirements.txt -r requirements-dev.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PIP) check
	@touch $(STAMP)

# Embedded Redis (unless REDIS_URL is set), one worker and the dashboard at http://localhost:8501.
run: setup
	$(VENV)/bin/workbench up

# A worker against a shared Redis (a GPU box joining a deployment):
#   make worker REDIS_URL=redis://:PASSWORD@main-box:6379/0 ARTIFACTS_DIR=/mnt/workbench/artifacts QUEUES=gpu
worker: setup
	$(VENV)/bin/workbench worker $(if $(QUEUES),--queues $(QUEUES))

demo: setup
	$(VENV)/bin/workbench demo

demo-fast: setup
	$(VENV)/bin/workbench demo --fast

# Headless Chromium for the browser test (Debian's package; Playwright drives it, no download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "install Debian's chromium package (the browser test needs /usr/bin/chromium)"; exit 1; }

# ruff (pinned in requirements-dev.txt, configured in pyproject.toml): lint and formatting, before the tests.
lint: setup
	$(VENV)/bin/ruff check app workers core bench tests
	$(VENV)/bin/ruff format --check app workers core bench tests

test: lint browser
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --dist loadfile --durations=15 $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf var/ out/ test-output/ .pytest_cache
