# Two commands: `make run` and `make test`. Both bootstrap everything they need and can be re-run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Development mode unless the caller says otherwise (settings refuse to start without SECRET_KEY when off).
export DEBUG ?= 1

OP_DIR := tests/oidc_provider

.PHONY: run test bench install migrate lint clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py dev_tokens
	$(BIN)/python manage.py devserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .

# The identity tests run a real OpenID Provider (the npm package oidc-provider) on loopback.
$(OP_DIR)/node_modules/.installed: $(OP_DIR)/package.json $(OP_DIR)/package-lock.json
	npm ci --prefix $(OP_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

test: lint $(OP_DIR)/node_modules/.installed
	$(BIN)/pytest

# Benchmarks (not timed tests): figures go to docs/performance.md.
bench: install
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/audit.py --postgres
	$(BIN)/python bench/api.py
	$(BIN)/python bench/workflows.py

clean:
	rm -rf $(VENV) var
