"""The web server (`manage.py web`, gunicorn) for real, on the test database: the ordinary (sync) views answer
through its sync worker, reads and writes, and on PostgreSQL its database connections stay bounded by the pool
and go back once it is idle."""

import json
import secrets
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import TOKENS
from tests.environment import clean_environment, wait_for, web_server
from tests.live import database_url

POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def server_environment(tmp_path, database=None, **variables) -> dict:
    """Production settings (DEBUG off) over plain HTTP on loopback, the suite's dev tokens, the test database."""
    return clean_environment(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
        CONTROLPLANE_DEV_MODE="1",
        CONTROLPLANE_DEV_TOKENS=json.dumps({t: {"id": f"dev-{role}", "role": role} for role, t in TOKENS.items()}),
        CONTROLPLANE_AUDIT_LOG="",
        DATABASE_URL=database or database_url(),
        LOG_LEVEL="WARNING",
        **variables,
    )


def call(url: str, method: str = "GET", body: dict | None = None, role: str = "admin") -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKENS[role]}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.mark.usefixtures("committed_demo")
def test_sync_views_read_and_write(tmp_path):
    with web_server(server_environment(tmp_path), tmp_path / "web.log") as url:
        assert call(f"{url}/api/me/") == (200, {"actor": "dev-admin", "role": "admin", "authMethod": "devToken"})
        status, index = call(f"{url}/api/services/index/")
        assert status == 200 and [entry["id"] for entry in index["results"]] == ["svc-demo"]
        release = {"serviceId": "svc-demo", "envId": "env-staging", "sha": "4f2a9c1", "version": "2024.10.03"}
        status, created = call(f"{url}/api/releases/", "POST", release)
        assert status == 201 and created["status"] == "Draft", created
        assert call(f"{url}/api/releases/{created['id']}/")[1]["version"] == "2024.10.03"
        assert call(f"{url}/api/releases/", "POST", release, role="viewer")[0] == 403
        status, events = call(f"{url}/api/audit-events/?subjectId={created['id']}")
        assert status == 200 and [e["action"] for e in events["results"]] == ["release.create"]


SERVER = "controlplane-web-under-test"  # the server's connections carry this application_name


def server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [SERVER])
        return cursor.fetchone()[0]


@pytest.mark.skipif(not POSTGRESQL, reason="SQLite has no server connections")
@pytest.mark.usefixtures("committed_demo")
def test_database_connections_stay_bounded_and_go_back_when_idle(tmp_path):
    pool_size = 4
    env = server_environment(
        tmp_path,
        database=f"{database_url()}?application_name={SERVER}",
        CONTROLPLANE_DB_POOL_SIZE=str(pool_size),
        CONTROLPLANE_DB_POOL_IDLE_SECONDS="0.5",
    )
    with web_server(env, tmp_path / "web.log", "--workers=1") as url:
        paths = ["/healthz", "/api/services/index/", "/api/releases/?serviceId=svc-demo", "/api/me/"] * 25
        seen = []
        with ThreadPoolExecutor(8) as clients:  # more clients than the worker serves at once: they queue
            answers = [clients.submit(call, f"{url}{path}") for path in paths]
            while not all(answer.done() for answer in answers):
                seen.append(server_connections())
                time.sleep(0.02)
        assert [answer.result()[0] for answer in answers] == [200] * len(paths)
        assert 1 <= max(seen) <= pool_size, seen
        # Idle: the pool closes what it does not use, down to the one connection it keeps.
        wait_for(lambda: server_connections() <= 1, timeout=20, what="idle connections to be closed")


def test_a_loaded_application_is_out_of_the_collectors_walks(tmp_path):
    """controlplane/startup.py: what a server process loaded (Django, the apps, every view) is frozen, under both
    servers (the reference imports controlplane.wsgi)."""
    import subprocess
    import sys

    script = "import gc, controlplane.wsgi, controlplane.views; print(gc.get_freeze_count())"
    env = clean_environment(tmp_path, DEBUG="1", DATABASE_URL=database_url())
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert int(done.stdout.split()[-1]) > 50_000, done.stdout
