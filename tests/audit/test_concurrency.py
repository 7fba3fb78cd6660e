"""Many writers at once: every change succeeds, the sequence is gapless and the chain verifies."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

SCRIPT = Path(__file__).with_name("concurrent_writers.py")
THREADS, CHANGES = 10, 15


def run_writers(database_url: str) -> dict:
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url,
        "CONTROLPLANE_AUDIT_LOG": "",
        "CHANGES_PER_THREAD": str(CHANGES),
    }
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_linear(result):
    assert result["errors"] == []  # in particular, no "database is locked" reached a caller
    assert result["events"] == THREADS * CHANGES * 2
    assert result["gapless"]
    assert set(result["per_actor"].values()) == {CHANGES * 2}
    assert result["broken_at"] is None, result["reason"]


def test_ten_threads_on_a_file_backed_sqlite_database(tmp_path):
    assert_linear(run_writers(f"sqlite:///{tmp_path / 'concurrent.sqlite3'}"))


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql", reason="the suite runs on SQLite"
)
def test_ten_threads_on_postgresql():
    db = settings.DATABASES["default"]
    server = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}"
    name = f"controlplane_concurrency_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        assert_linear(run_writers(f"{server}/{name}"))
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
