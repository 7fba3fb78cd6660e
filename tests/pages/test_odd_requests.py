"""Requests no page issues: ids that are not ids (a NUL byte, which PostgreSQL refuses in a query with a 500)
are 404s before a view runs, and the same in a query string is read as unknown, never sent to the database."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import Resolver404, resolve

from controlplane.views import api_not_found
from incidents.models import Incident
from releases import workflows
from releases.models import Release
from tests.conftest import sign_in

NUL_PATHS = [
    "/services/a\x00b/",
    "/environments/a\x00b/",
    "/releases/a\x00b/",
    "/releases/a\x00b/summary",
    "/releases/a\x00b/timeline",
    "/releases/a\x00b/deploy/",
    "/releases/a\x00b/promote/",
    "/runs/a\x00b/",
    "/incidents/a\x00b/acknowledge/",
    "/incidents/a\x00b/resolve/",
    "/api/workflow-runs/a\x00b/logs/stream",
]


@pytest.mark.parametrize("path", NUL_PATHS)
def test_a_path_id_that_is_not_an_id_resolves_to_no_view(path):
    if path.startswith("/api/"):  # the API's last route: its JSON 404, which reads nothing
        assert resolve(path).func is api_not_found
        return
    with pytest.raises(Resolver404):
        resolve(path)


@pytest.mark.django_db
@pytest.mark.parametrize("path", [p.replace("\x00", "%00") for p in NUL_PATHS])
def test_it_is_a_404(client, path):
    sign_in(client, "deployer")
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_a_promotion_target_that_is_not_an_id_is_unknown_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(ValidationError, match="unknown environment"):
        workflows.promotion_target("env-\x00")


@pytest.mark.django_db
def test_the_promote_confirmation_and_the_incident_pages_read_it_as_unknown(client, demo):
    sign_in(client, "deployer")
    assert client.get("/releases/rel-123/promote/", {"envId": "env-\x00"}).status_code == 400
    for path in ("/incidents/", "/incidents/fragment/"):
        assert client.get(path, {"before": "2024-01-01T00:00:00+00:00~inc-\x00"}).status_code == 200


# A field given twice is a 400 page naming it, never read as its last value; an empty field is a form's "any".
TWICE = [
    ("get", "/", {"q": ["demo", "other"]}, "q"),
    ("get", "/incidents/", {"severity": ["high", "low"]}, "severity"),
    ("get", "/incidents/fragment/", {"before": ["a", "b"]}, "before"),
    ("get", "/audit/", {"actor": ["a", "b"]}, "actor"),
    ("get", "/metrics/", {"serviceId": ["svc-demo", "svc-other"]}, "serviceId"),
    ("get", "/environments/env-prod/", {"page": ["1", "2"]}, "page"),
    ("get", "/releases/rel-123/promote/", {"envId": ["env-staging", "env-prod"]}, "envId"),
    ("post", "/incidents/new/", {"serviceId": "svc-demo", "severity": ["low", "critical"]}, "severity"),
    ("post", "/releases/new/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": ["abcdef1", "abcdef2"]}, "sha"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "data", "name"), TWICE, ids=[f"{m} {p} {n}" for m, p, _, n in TWICE])
def test_a_page_field_given_twice_is_a_400_naming_it(client, demo, method, path, data, name):
    sign_in(client, "deployer")
    before = (Incident.objects.count(), Release.objects.count())
    response = getattr(client, method)(path, {**data, "version": "1", "link": "https://pd.example.com/1"})
    assert response.status_code == 400
    assert f"{name}: is given more than once." in response.content.decode()
    assert (Incident.objects.count(), Release.objects.count()) == before


@pytest.mark.django_db
def test_a_pages_empty_fields_are_no_filter(client, demo):
    sign_in(client, "viewer")
    assert client.get("/incidents/", {"serviceId": "", "severity": "", "status": ""}).status_code == 200
    assert client.get("/audit/", {"actor": "", "since": ""}).status_code == 200
    assert client.get("/metrics/", {"serviceId": "", "envId": "", "since": "", "until": ""}).status_code == 200
    assert client.get("/", {"q": "", "envId": ""}).status_code == 200
