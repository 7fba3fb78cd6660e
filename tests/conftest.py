import itertools
import uuid

import pytest
from django.core.exceptions import ValidationError

from releases.models import Release
from services.models import Environment, Service

_numbers = itertools.count(1)

# Dev tokens for the suite, one per role (never the ones in var/dev-tokens.json).
TOKENS = {role: f"test-{role}-token-0123456789" for role in ("viewer", "deployer", "admin")}


@pytest.fixture(autouse=True)
def empty_cache(settings):
    # Test databases roll back, so a trail head can recur across tests; a real one never does.
    from django.core.cache import cache

    if settings.REDIS_URL:  # a shared Redis (REDIS_URL in .env): never FLUSHDB it, keys of this test's own
        settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def audit_mirror(settings, tmp_path):
    """Each test mirrors the trail to its own file, never to the developer's (var/audit): that one belongs to
    another database, and the mirror would (rightly) refuse to write to it."""
    settings.AUDIT_LOG = str(tmp_path / "audit" / "control-plane.log")


@pytest.fixture(autouse=True)
def dev_tokens(settings):
    settings.CONTROLPLANE = {
        **settings.CONTROLPLANE,
        "devMode": True,
        "devTokens": {token: {"id": f"dev-{role}", "role": role} for role, token in TOKENS.items()},
    }


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
    from django.core.management import call_command

    call_command("loaddata", "fixtures/demo.json", verbosity=0)


def refused(fn, field=None, contains=""):
    """Assert fn() raises ValidationError naming `field` with a message containing `contains`."""
    with pytest.raises(ValidationError) as caught:
        fn()
    error = caught.value
    messages = error.message_dict.get(field, []) if field else error.messages
    assert any(contains in m for m in messages), f"expected {field!r}: ...{contains}... in {error}"
    return error
