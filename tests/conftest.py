import itertools
import os
import signal
import uuid

import hypothesis
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings

from releases.models import Release
from services.models import Environment, Service
from tests.environment import TOKENS, stop_everything
from tests.live import (  # noqa: F401 - fixtures
    browser,
    chromium,
    committed_demo,
    kept_web_servers,
    load_demo,
    shipped_gates,
    web,
    worker,
)
from tests.platforms import ecs, execute, k8s_platform, kube, shared_kube  # noqa: F401 - fixtures

_numbers = itertools.count(1)


# Property tests run the quick profile in `make test`, the full one in `.ci/run` and `make test-full`
# (HYPOTHESIS_PROFILE=full). Derandomized in both: the same examples every run, no example database in the tree.
hypothesis.settings.register_profile(
    "full", max_examples=100, stateful_step_count=30, deadline=None, derandomize=True, database=None
)
hypothesis.settings.register_profile(
    "quick", hypothesis.settings.get_profile("full"), max_examples=20, stateful_step_count=12
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


def examples(full: int) -> int:
    """A property's examples: `full` in the full profile, as many fewer in the loaded one as its share of the
    full one's examples (a costly property states its own depth, and the profile still governs it)."""
    share = hypothesis.settings.default.max_examples / hypothesis.settings.get_profile("full").max_examples
    return max(1, round(full * share))


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # `timeout make test` and a closed terminal send SIGTERM / SIGHUP, which would end Python without
    # teardown: handled like Ctrl-C, so every fixture still stops the servers, workers and browsers it started.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)


def pytest_collection_modifyitems(items):
    # schemathesis names an operation's test `test_…[GET /api/me/]`, but pytest 9 builds a test's id from its
    # function and its parametrization, which schemathesis does not use: the 52 operations of
    # tests/api/test_schema.py had one id between them, and pytest-xdist (`make test`) ran one of them only.
    for item in items:
        if "[" in item.name and "[" not in item.nodeid:
            item._id = item._id.with_params(item.name.partition("[")[2].removesuffix("]"))


def pytest_unconfigure(config):
    stop_everything()  # whatever an interrupted teardown did not reach


def emptied_cache() -> dict:
    """The settings of an empty cache: on a shared Redis (REDIS_URL in .env), which is never FLUSHDBed, a key
    prefix of its own; otherwise none, the local cache being cleared."""
    from django.conf import settings
    from django.core.cache import cache

    if settings.REDIS_URL:
        return {"CACHES": {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}}
    cache.clear()
    return {}


def suite_settings(folder) -> dict:
    """What every test runs with (the autouse fixtures below): the suite's dev tokens, one per role; the audit
    trail mirrored to a file in `folder`, never to the developer's (var/audit: that one belongs to another
    database, and the mirror would rightly refuse to write to it); an empty cache."""
    from django.conf import settings

    return {
        "CONTROLPLANE": {
            **settings.CONTROLPLANE,
            "devMode": True,
            "devTokens": {token: {"id": f"dev-{role}", "role": role} for role, token in TOKENS.items()},
        },
        "AUDIT_LOG": str(folder / "audit" / "control-plane.log"),
        # The test runner turns DEBUG off, so WhiteNoise (finders on, from .env's DEBUG) would index every static
        # file again for each test client's middleware (26 ms each, thousands of clients); it finds a file when it
        # is asked for instead.
        "WHITENOISE_AUTOREFRESH": True,
        **emptied_cache(),  # test databases roll back, so a trail head can recur across tests; a real one never does
    }


@pytest.fixture(autouse=True)
def as_every_test(settings, tmp_path):
    for name, value in suite_settings(tmp_path).items():
        setattr(settings, name, value)


def bearer(role: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKENS[role]}"}


def sign_in(client, role: str):
    response = client.post("/login/", {"token": TOKENS[role]})
    assert response.status_code == 302, response.content
    return client


@pytest.fixture
def make_environment(db):
    def make(**fields):
        n = next(_numbers)
        fields.setdefault("name", f"staging-{n}")
        env = Environment(**fields)
        env.save()
        return env

    return make


@pytest.fixture
def make_service(db, make_environment):
    def make(environments=None, **fields):
        n = next(_numbers)
        fields.setdefault("name", f"Service {n}")
        fields.setdefault("repo", f"github.com/acme/service-{n}")
        fields.setdefault("deployment_adapters", ["k8s"])
        service = Service(**fields)
        service.save()
        service.environments.set(environments if environments is not None else [make_environment()])
        return service

    return make


@pytest.fixture
def make_release(db, make_service):
    def make(service=None, environment=None, **fields):
        service = service or make_service()
        fields.setdefault("sha", "9f3b7de")
        fields.setdefault("version", "1.0.0")
        release = Release(service=service, environment=environment or service.environments.first(), **fields)
        release.save()
        return release

    return make


@pytest.fixture
def demo(db):
    load_demo()


@pytest.fixture
def shipped_demo(db):
    """The demo exactly as `make run` loads it (for tests that freeze time)."""
    load_demo(as_shipped=True)


def built_once(name: str, build):
    """A module-scoped autouse fixture `name`: `build()` (its value), run once for the module in a transaction
    rolled back after the module's last test (Django's setUpTestData). Each test's own writes roll back to it as
    usual; it saves building the data for every test."""

    @pytest.fixture(scope="module", autouse=True, name=name)
    def data(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock(), transaction.atomic():
            yield build()
            transaction.set_rollback(True)

    return data


def loaded_once(name: str, build=lambda: None, as_shipped: bool = False):
    """`built_once`: the demo fixture, then `build()`."""

    def demo_then_build():
        load_demo(as_shipped)
        return build()

    return built_once(name, demo_then_build)


def measured_once(name: str, measure):
    """A module-scoped fixture `name`: `measure()` (its value), for measurements that several tests assert on
    and that share costly data (query counts at two sizes): run once, when the first of those tests asks, with the
    suite's settings and in a transaction rolled back before that test runs (so it holds nothing across tests)."""

    @pytest.fixture(scope="module", name=name)
    def measured(django_db_setup, django_db_blocker, tmp_path_factory):
        with (
            django_db_blocker.unblock(),
            override_settings(**suite_settings(tmp_path_factory.mktemp(name))),
            transaction.atomic(),
        ):
            value = measure()
            transaction.set_rollback(True)
        return value

    return measured


def refused(fn, field=None, contains=""):
    """Assert fn() raises ValidationError naming `field` with a message containing `contains`."""
    with pytest.raises(ValidationError) as caught:
        fn()
    error = caught.value
    messages = error.message_dict.get(field, []) if field else error.messages
    assert any(contains in m for m in messages), f"expected {field!r}: ...{contains}... in {error}"
    return error
