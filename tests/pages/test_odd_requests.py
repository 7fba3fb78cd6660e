"""Requests no page issues: ids that are not ids (a NUL byte, which PostgreSQL refuses in a query with a 500)
are 404s before a view runs, and the same in a query string is read as unknown, never sent to the database."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import Resolver404, resolve

from releases import workflows
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
