"""Idempotency-Key on the API's writes: a retried write is answered as the first was, byte for byte, and
nothing runs twice (draft-ietf-httpapi-idempotency-key-header; docs/api.md)."""

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from idempotency import keys
from idempotency.models import Attempt
from releases.models import Release, WorkflowRun
from tests.conftest import TOKENS

NOW = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # Europe's clocks go back at 01:00 UTC


def client(role: str = "deployer") -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS[role]}")


def post(path: str, body: dict, key: str | None = None, role: str = "deployer", **headers):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client(role).post(path, json.dumps(body), content_type="application/json", **extra, **headers)


def release_body(version: str = "7.0") -> dict:
    return {"serviceId": "svc-demo", "envId": "env-staging", "sha": "abcdef1", "version": version}


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.django_db
def test_a_retry_gets_the_first_answer_byte_for_byte_and_nothing_runs_twice(demo, clock):
    first = post("/api/releases/", release_body(), key='"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    events = AuditEvent.objects.count()
    again = post("/api/releases/", release_body(), key='"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    assert again.status_code == 201 and again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert Release.objects.filter(version="7.0").count() == 1 and AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_a_retried_deploy_returns_the_same_run_and_starts_no_second(demo, clock):
    release = Release.objects.create(service_id="svc-demo", environment_id="env-staging", sha="abcdef1", version="8")
    path = f"/api/releases/{release.pk}/deploy/"
    first, again = (post(path, {}, key="deploy-8-attempt") for _ in range(2))
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    assert WorkflowRun.objects.filter(release=release).count() == 1


@pytest.mark.django_db
def test_a_key_used_for_another_request_is_a_422_naming_what_differs(demo, clock):
    assert post("/api/releases/", release_body("1"), key="k-1").status_code == 201
    body = post("/api/releases/", release_body("2"), key="k-1")
    assert body.status_code == 422 and body.json()["mismatch"] == "body"
    assert "POST /api/releases/ with another body" in body.json()["detail"]
    path = post("/api/incidents/", {}, key="k-1")
    assert path.status_code == 422 and path.json()["mismatch"] == "path"
    rel = Release.objects.get(version="1")
    method = client().patch(
        "/api/releases/", json.dumps(release_body("1")), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert method.status_code == 422 and method.json()["mismatch"] == "method", method.content
    assert Release.objects.filter(service_id="svc-demo", version="2").count() == 0 and rel.pk


@pytest.mark.django_db
def test_a_key_belongs_to_its_principal(demo, clock):
    assert post("/api/releases/", release_body("1"), key="shared", role="deployer").status_code == 201
    other = post("/api/releases/", release_body("1"), key="shared", role="admin")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert Release.objects.filter(version="1").count() == 2


@pytest.mark.django_db
def test_while_the_first_is_processed_a_retry_is_a_409(demo, clock):
    Attempt.objects.create(
        principal="dev-deployer",
        key="busy",
        method="POST",
        path="/api/releases/",
        body_digest=hashlib.sha256(json.dumps(release_body()).encode()).hexdigest(),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    response = post("/api/releases/", release_body(), key="busy")
    assert response.status_code == 409
    assert response.json() == {"detail": "A request with this Idempotency-Key is still being processed."}
    assert not Release.objects.filter(version="7.0").exists()
    # One that never finished (its process died) is taken over once it is clearly abandoned.
    clock.shift(keys.ABANDONED_AFTER)
    assert post("/api/releases/", release_body(), key="busy").status_code == 201


@pytest.mark.django_db
def test_an_expired_key_is_new_again_and_the_worker_purges_them(demo, clock, settings):
    settings.CONTROLPLANE_IDEMPOTENCY_TTL_SECONDS = 3600
    assert post("/api/releases/", release_body("1"), key="hourly").status_code == 201
    clock.shift(timedelta(minutes=59))  # across the clocks going back: an hour of UTC is an hour
    assert post("/api/releases/", release_body("1"), key="hourly")["Idempotent-Replayed"] == "true"
    clock.shift(timedelta(minutes=1))
    again = post("/api/releases/", release_body("1"), key="hourly")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again  # it ran again
    assert Release.objects.filter(version="1").count() == 2
    assert post("/api/releases/", release_body("2"), key="other").status_code == 201
    clock.shift(timedelta(hours=1))
    from controlplane.signals import worker_round

    worker_round.send(sender=None)
    assert not Attempt.objects.exists()


@pytest.mark.django_db
def test_a_4xx_is_kept_and_a_5xx_is_not(demo, clock, monkeypatch):
    refused = post("/api/releases/", {"serviceId": "svc-demo"}, key="bad")
    assert refused.status_code == 400
    assert post("/api/releases/", {"serviceId": "svc-demo"}, key="bad").content == refused.content
    from releases import api as releases_api

    def broken(self, serializer):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(releases_api.ReleaseViewSet, "perform_create", broken)
    failed = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['deployer']}", raise_request_exception=False).post(
        "/api/releases/", json.dumps(release_body()), content_type="application/json", HTTP_IDEMPOTENCY_KEY="flaky"
    )
    assert failed.status_code == 500 and not Attempt.objects.filter(key="flaky").exists()
    monkeypatch.undo()
    assert post("/api/releases/", release_body(), key="flaky").status_code == 201  # the retry runs


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    ["", '""', '"unclosed', "x" * 256, f'"{"x" * 256}"', "caf\u00e9", "two words", "tab\there", '"\\x"'],
)
def test_a_malformed_key_is_a_400_naming_the_header(demo, key):
    response = post("/api/releases/", release_body(), key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json() and "quoted string" in response.json()["Idempotency-Key"][0]
    assert not Release.objects.filter(version="7.0").exists()


@pytest.mark.django_db
def test_the_quoted_and_bare_forms_name_the_same_key_and_graphql_honours_it(demo, clock):
    assert post("/api/releases/", release_body(), key='"same"').status_code == 201
    assert post("/api/releases/", release_body(), key="same")["Idempotent-Replayed"] == "true"
    mutation = {
        "query": 'mutation { incidentCreate(input: {serviceId: "svc-demo", severity: low, '
        'link: "https://pager.example/1"}) { incident { id } errors { message } } }'
    }
    first, again = (post("/graphql/", mutation, key="gql-1") for _ in range(2))
    assert first.status_code == 200 and again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert first.json()["data"]["incidentCreate"]["incident"]["id"]


@pytest.mark.django_db
def test_every_write_in_the_openapi_schema_takes_the_header(api):
    schema = api("viewer").get("/api/schema/?format=json", HTTP_ACCEPT="application/json")
    paths = schema.json()["paths"] if schema.status_code == 200 else None
    assert paths, schema.status_code
    for path, operations in paths.items():
        for method, operation in operations.items():
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert ("Idempotency-Key" in names) == (method in ("post", "patch")), (method, path)
            if method in ("post", "patch"):
                assert "422" in operation["responses"] and "24 h" in str(operation["parameters"])


def test_twenty_concurrent_posts_with_one_key_make_one_change(committed_demo):
    barrier = threading.Barrier(20)
    answers: list = []

    def send():
        try:
            barrier.wait(timeout=10)
            answers.append(post("/api/releases/", release_body("20.0"), key="stampede"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(a.status_code for a in answers)
    assert len(answers) == 20 and Release.objects.filter(version="20.0").count() == 1, statuses
    created = [a for a in answers if a.status_code == 201]
    assert set(statuses) <= {201, 409} and len({a.content for a in created}) == 1
    assert sum("Idempotent-Replayed" not in a for a in created) == 1  # one ran; the others were told or replayed
    assert AuditEvent.objects.filter(action="release.create", metadata__version="20.0").count() == 1
