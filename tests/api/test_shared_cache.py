"""The services index cache shared by processes (REDIS_URL): the real Redis at 127.0.0.1:6379, each test under
a key prefix of its own, so parallel runs and other control planes on the same Redis never meet."""

import json
import logging
import socket
import urllib.request
import uuid

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from controlplane.settings import shared_cache
from overview import services_index
from tests.conftest import TOKENS
from tests.environment import clean_environment, free_port, web_server
from tests.live import process_env
from tests.test_configuration import manage

REDIS_URL = "redis://127.0.0.1:6379/0"
INDEX = "/api/services/index/"


def _redis_answers() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(
    not _redis_answers(), reason="no Redis answers at 127.0.0.1:6379 (it runs on this project's machines and CI's)"
)


@pytest.fixture
def shared(settings, monkeypatch):
    """This process's cache is the real Redis under a private prefix; returns the prefix. Its keys go after."""
    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": shared_cache(REDIS_URL, prefix)}
    monkeypatch.setattr(services_index, "_cache_paused_until", 0.0)
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def server(shared, transactional_db, tmp_path):
    """The real web server (another process) on the test database with the demo data, sharing the cache."""
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    env = process_env(REDIS_URL=REDIS_URL, CONTROLPLANE_CACHE_PREFIX=shared)
    with web_server(env, tmp_path / "web.log") as url:
        yield url


def fetch(base_url, method="GET", body=None, role="viewer"):
    """A request to a real server, as the in-process test client's host (`testserver`), so both name the
    page by the same absolute URL and therefore the same cache key."""
    request = urllib.request.Request(
        base_url + (INDEX if method == "GET" else "/api/services/svc-demo/"),
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKENS[role]}", "Host": "testserver", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def read_counting_queries(viewer):
    with CaptureQueriesContext(connection) as captured:
        response = viewer.get(INDEX)
    assert response.status_code == 200
    return response.json(), len(captured)


def name_of_demo(page):
    return next(s["name"] for s in page["results"] if s["id"] == "svc-demo")


@needs_redis
def test_a_page_one_process_computed_is_served_to_another(server, viewer):
    filled = fetch(server)  # the web server computes the page and stores it in Redis
    page, queries = read_counting_queries(viewer)  # this process has never seen it
    assert page == filled and queries == 1  # the trail's head, then the page from Redis: nothing computed


@needs_redis
def test_a_change_anywhere_makes_the_page_stale_for_every_process(server, viewer):
    page, _ = read_counting_queries(viewer)  # computed here, stored in Redis
    assert fetch(server) == page
    fetch(server, "PATCH", {"name": "Renamed"}, role="admin")  # the server's change writes an audit event
    page, queries = read_counting_queries(viewer)
    assert name_of_demo(page) == "Renamed" and queries > 1  # the head moved on: computed afresh here
    assert fetch(server) == page  # and the server serves the new page (this process's, from Redis)
    assert read_counting_queries(viewer) == (page, 1)


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers: a Redis that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.mark.parametrize("down", ["closed port", "hanging server"])
def test_without_redis_the_index_still_answers_computed(down, request, settings, monkeypatch, viewer, demo, caplog):
    settings.INDEX_CACHE = False
    expected = viewer.get(INDEX).json()
    settings.INDEX_CACHE = True
    url = f"redis://127.0.0.1:{free_port()}/0" if down == "closed port" else request.getfixturevalue("silent_server")
    settings.CACHES = {"default": shared_cache(url, f"test-{uuid.uuid4().hex}")}
    monkeypatch.setattr(services_index, "_cache_paused_until", 0.0)
    caplog.set_level(logging.WARNING, logger="overview.services_index")
    for _ in range(3):
        response = viewer.get(INDEX)
        assert response.status_code == 200 and response.json() == expected
    # One warning, one failed call (a hanging Redis fails it at the socket timeout, else the test hangs until
    # pytest-timeout fails it): after a failure the cache rests for a while.
    (warning,) = [r for r in caplog.records if r.name == "overview.services_index"]
    assert "services index cache unavailable" in warning.getMessage()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REDIS_URL", "redis://:hunter2@cache:port/0", "(got 'redis://***@cache:port/0')."),
        ("REDIS_URL", "redis://cache/0?password=hunter2&socket_timeout=soon", "password=***&socket_timeout=soon"),
        ("REDIS_URL", "http://cache:6379", "must be a redis://, rediss:// or unix:// URL naming a server, like"),
        ("REDIS_URL", "unix://", "REDIS_URL=redis://127.0.0.1:6379/0 (got 'unix://')."),
        ("CONTROLPLANE_CACHE_PREFIX", "two words", "must be letters, digits and . _ : -"),
    ],
)
def test_a_bad_redis_setting_refuses_to_start_in_one_line(tmp_path, variable, value, says):
    done = manage("check", env=clean_environment(tmp_path, DEBUG="1", **{variable: value}))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"{variable} ") and says in done.stderr, done.stderr
    assert "hunter2" not in done.stderr


def test_the_key_prefix_names_the_database(tmp_path):
    def prefix(**env):
        env = clean_environment(tmp_path, DEBUG="1", REDIS_URL=REDIS_URL, **env)
        done = manage("shell", "-c", "from django.conf import settings; print(settings.CACHE_PREFIX)", env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()[-1]

    one = prefix(DATABASE_URL=f"sqlite:///{tmp_path}/one.sqlite3")
    assert one.startswith("cp-") and one == prefix(DATABASE_URL=f"sqlite:///{tmp_path}/../{tmp_path.name}/one.sqlite3")
    assert prefix(DATABASE_URL="postgres://cp@db:5432/controlplane") != prefix(DATABASE_URL="postgres://cp@db/staging")
    assert prefix(CONTROLPLANE_CACHE_PREFIX="cp-staging") == "cp-staging"
