# Two commands: `make run` and `make test`. Both bootstrap everything they need and can be re-run.
# `make serve` is the production configuration (README "Production").
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Development mode unless the caller says otherwise (settings refuse to start without SECRET_KEY when off).
export DEBUG ?= 1
# The same for commands run by hand (`python manage.py ...`, `pytest`): settings read this git-ignored file,
# real environment variables winning. Nothing secret goes in it: the dev SECRET_KEY stays in var/.
ENV_FILE ?= .env

OP_DIR := tests/oidc_provider

.PHONY: run serve check-port test test-full bench install migrate lint clean

# Written once; an edited .env is kept.
$(ENV_FILE):
	@printf '%s\n' '# Development settings, written by make (git-ignored). Real environment variables win.' 'DEBUG=1' > $@
	@echo "Wrote $@ (DEBUG=1): manage.py and pytest run in development mode from this checkout."

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

migrate: install $(ENV_FILE)
	$(BIN)/python manage.py migrate --noinput

# First, before installing or migrating anything: is the port free? (Standard library only.)
check-port:
	@$(PYTHON) controlplane/portcheck.py $(HOST) $(PORT)

# The web server (one process with DEBUG on) and the worker, under `manage.py serve`.
run: check-port migrate
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py dev_tokens
	$(BIN)/python manage.py serve $(HOST):$(PORT)

# Production: DEBUG off whatever .env says (a real environment variable wins over .env), so it refuses to
# start without SECRET_KEY; WEB_CONCURRENCY web processes, the worker, static files served by the app.
serve: export DEBUG := 0
serve: check-port install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py serve $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .

# The identity tests run a real OpenID Provider (the npm package oidc-provider) on loopback.
$(OP_DIR)/node_modules/.installed: $(OP_DIR)/package.json $(OP_DIR)/package-lock.json
	npm ci --prefix $(OP_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

# Page tests drive Debian's chromium through playwright (a browser download from elsewhere fails here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

# The suite on TEST_PROCESSES processes (pytest-xdist; it mostly waits on servers, browsers and databases, so
# more processes than cores), a module's tests on one process (its kept servers and data), property tests in the quick Hypothesis profile. `make test-full` (and .ci/run):
# the full profile. One file by hand: `.venv/bin/pytest tests/...` (one process, quick profile).
TEST_PROCESSES ?= 3
# Bytecode is written whatever PYTHONDONTWRITEBYTECODE says: the suite starts some 150 Python processes (servers,
# workers, manage.py, cpctl, its xdist workers), and each would compile the project's modules and rewrite the tests'
# asserts again (0.1 s of CPU per Django process, 4 s per xdist worker).
test: lint $(ENV_FILE) $(OP_DIR)/node_modules/.installed $(CHROMIUM)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadscope

test-full: export HYPOTHESIS_PROFILE := full
test-full: test

# Benchmarks (not timed tests): figures go to docs/performance.md. Each runs as a module of the bench package
# (a script's folder first on the path would let bench/graphql.py shadow graphql-core); the suite runs each
# once at a tiny size (tests/test_bench.py).
bench: install
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.audit --postgres
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.graphql
	$(BIN)/python -m bench.pages
	$(BIN)/python -m bench.workflows
	$(BIN)/python -m bench.streams
	$(BIN)/python -m bench.streams --postgres
	$(BIN)/python -m bench.cli
	$(BIN)/python -m bench.policies

clean:
	rm -rf $(VENV) var
