import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tests.conftest import TOKENS
from tests.environment import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def committed_demo(transactional_db):
    """The demo data, committed, so another process (the worker) sees it."""
    call_command("loaddata", "fixtures/demo.json", verbosity=0)


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


@pytest.fixture
def processes():
    """Processes a test starts, stopped (SIGTERM, then SIGKILL) when it ends."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def worker(transactional_db, processes):
    """`worker(**env)` starts a real `manage.py worker` process on the test database."""

    def start(**env) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "-v0"], env=process_env(**env), cwd=ROOT
        )
        processes.append(process)
        return process

    return start


@pytest.fixture
def web(transactional_db, processes):
    """`web(**env)` starts the real web server (`manage.py web`, uvicorn) on the test database and returns
    its base URL once it answers."""

    def start(**env) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "web", f"127.0.0.1:{port}"], env=process_env(**env), cwd=ROOT
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def answers():
            assert process.poll() is None, "the web server exited"
            try:
                return urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200
            except OSError:
                return False

        wait_for(answers, 30, "the web server")
        return url

    return start
