import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

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


@pytest.fixture
def worker(transactional_db):
    """`worker(**env)` starts a real `manage.py worker` process on the test database."""
    processes = []

    def start(**env) -> subprocess.Popen:
        settings_env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": database_url(),
            "CONTROLPLANE_AUDIT_LOG": "",
            "CONTROLPLANE_STEP_DELAY_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in env.items()},
        }
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "-v0"], env=settings_env, cwd=ROOT
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
