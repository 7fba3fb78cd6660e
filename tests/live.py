"""The live control plane for the tests that need one: the real web server (`manage.py web`, gunicorn) and
worker (`manage.py worker`) as processes of their own on the test database, over committed data.

A web server starts in about two seconds, mostly Python and Django starting, so the suite keeps one per
configuration for the whole session (per xdist worker) and each test brings its own data: `transactional_db`
empties the tables after every test, and the server holds nothing of a test's but cached pages keyed by the
audit trail's head. A test that stops or breaks its server asks for one of its own (`web(own=True)`).
Workers are not kept: every running worker takes tasks from the one queue, so a worker left from the test
before would run the next test's queued deploys before that test starts the worker it means."""

import asyncio
import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from services import promotion
from services.models import ChangeWindow, Environment
from tests.environment import TOKENS, start_process, stop_group, web_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # installed by `make test`; never a browser download


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(**env) -> dict:
    """The environment of a process of ours on the test database: the suite's dev tokens, no mirror file."""
    return {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url(),
        "CONTROLPLANE_AUDIT_LOG": "",
        "CONTROLPLANE_STEP_DELAY_SECONDS": "0",
        "CONTROLPLANE_DEV_TOKENS": json.dumps(
            {token: {"id": f"dev-{role}", "role": role} for role, token in TOKENS.items()}
        ),
        "LOG_LEVEL": "WARNING",
        **{k: str(v) for k, v in env.items()},
    }


# env-prod's policy refs as `load_demo` leaves them for tests that are not about policies, and as shipped.
DEMO_PROD_REFS = ["policy:change-window:weekday"]
SHIPPED_PROD_REFS = ["policy:change-window:weekday", "policy:requires:env-staging", "policy:incident-gate:critical"]
ALL_WEEK = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}


def load_demo(as_shipped: bool = False):
    """The demo data. Unless `as_shipped`, env-prod's gates are opened for a test that is not about policies: it
    must not pass or fail by the hour it runs at (the `weekday` window is opened all week), and it may deploy a
    release made in env-prod and open a critical incident (only the window ref is kept). tests/policies use the
    demo as shipped, with time frozen."""
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    if not as_shipped:
        ChangeWindow.objects.filter(name="weekday").update(**ALL_WEEK)
        Environment.objects.filter(pk="env-prod").update(policy_refs=DEMO_PROD_REFS)
        promotion.renumber(Environment)  # (an update() past save(): the order follows the refs it set)


@pytest.fixture
def shipped_gates(committed_demo):
    """The committed demo's env-prod gated as shipped (its three refs; the `weekday` window Mon-Fri 09:00-17:00
    Europe/Berlin), for a test about the gate against a live server, which runs on the real clock."""
    Environment.objects.filter(pk="env-prod").update(policy_refs=SHIPPED_PROD_REFS)
    promotion.renumber(Environment)
    ChangeWindow.objects.filter(name="weekday").update(days=[1, 2, 3, 4, 5], start="09:00", end="17:00")


@pytest.fixture
def committed_demo(transactional_db):
    """The demo data, committed, so another process (the server, the worker) sees it (its change window open
    all week: `load_demo`)."""
    load_demo()


@pytest.fixture
def worker(transactional_db):
    """`worker(**env)` starts a real `manage.py worker` process on the test database, stopped after the test."""
    processes = []

    def start(**env) -> subprocess.Popen:
        process = start_process(
            [sys.executable, str(ROOT / "manage.py"), "worker", "-v0"], env=process_env(**env), cwd=ROOT
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop_group(process, timeout=10)
    # Whatever the workers did (runs claimed, ended, recovered, killed halfway), the read model they kept in
    # each change's transaction equals a recomputation from history: a CommandError names the first difference.
    call_command("check_read_models", stdout=io.StringIO())


@pytest.fixture(scope="session")
def kept_web_servers(django_db_setup, django_db_blocker, tmp_path_factory):
    """The session's web servers, one per configuration: {environment: url}. Stopped before the test database
    is dropped (this fixture depends on its setup)."""
    folder = tmp_path_factory.mktemp("web")
    with contextlib.ExitStack() as servers:
        kept: dict[tuple, tuple[str, subprocess.Popen]] = {}

        def url(**env) -> str:
            key = tuple(sorted(env.items()))
            if key in kept and kept[key][1].poll() is None:
                return kept[key][0]
            with django_db_blocker.unblock():
                environment = process_env(**env)
            log = folder / f"web-{len(kept) + 1}.log"
            kept[key] = servers.enter_context(web_server(environment, log, with_process=True))
            return kept[key][0]

        yield url


@pytest.fixture
def web(transactional_db, kept_web_servers, tmp_path):
    """`web(**env)`: the base URL of a real web server with those settings on the test database, once it
    answers. `web(own=True, **env)` starts one for this test alone (its log: tmp_path/web-N.log), stopped after it."""
    numbers = itertools.count(1)
    with contextlib.ExitStack() as own_servers:

        def start(own=False, **env) -> str:
            if not own:
                return kept_web_servers(**env)
            log = tmp_path / f"web-{next(numbers)}.log"
            return own_servers.enter_context(web_server(process_env(**env), log))

        yield start


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for the session (per xdist worker), and the event loop of playwright's sync API."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        loop = asyncio.get_running_loop()
        asyncio._set_running_loop(None)
        yield launched, loop
        asyncio._set_running_loop(loop)
        launched.close()


@pytest.fixture
def browser(chromium):
    """The session's Chromium, for one test; its users get browser contexts of their own. Playwright's sync
    API marks its event loop as running in this thread while it is in use, and Django's ORM refuses to run
    in a thread whose loop runs: so the mark is set for the tests that use the browser only."""
    launched, loop = chromium
    asyncio._set_running_loop(loop)
    yield launched
    asyncio._set_running_loop(None)

