import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tests.conftest import TOKENS
from tests.environment import web_server

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
def worker(transactional_db):
    """`worker(**env)` starts a real `manage.py worker` process on the test database."""
    processes = []

    def start(**env) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "-v0"], env=process_env(**env), cwd=ROOT
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # Whatever the workers did (runs claimed, ended, recovered, killed halfway), the read model they kept in
    # each change's transaction equals a recomputation from history: a CommandError names the first difference.
    call_command("check_read_models", stdout=io.StringIO())


@pytest.fixture
def web(transactional_db, tmp_path):
    """`web(**env)` starts the real web server (`manage.py web`, uvicorn) on the test database and returns
    its base URL once it answers."""
    numbers = itertools.count(1)
    with contextlib.ExitStack() as servers:

        def start(**env) -> str:
            log = tmp_path / f"web-{next(numbers)}.log"
            return servers.enter_context(web_server(process_env(**env), log))

        yield start
