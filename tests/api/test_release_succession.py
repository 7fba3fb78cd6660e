"""Which release is current, over REST and in the admin: `isCurrent`, `supersededBy`, `supersededAt` on every
release, the `isCurrent` filter, and the admin's release list filtered by it."""

import re

import pytest

from releases import runs
from releases.models import Release, WorkflowRun
from services.models import Environment
from tests.conftest import loaded_once, sign_in


def lift_prod_policies():
    # Succession, not policies: deploys straight into env-prod, at any hour (tests/api/test_policies.py gates them).
    prod = Environment.objects.get(pk="env-prod")
    prod.policy_refs = []
    prod.save()


demo = loaded_once("demo", lift_prod_policies)  # the demo data, loaded once for the module

READ_ONLY = "is read-only: it changes only when a release of the service activates in the environment."


def deployed(deployer, version: str, env: str = "env-prod") -> str:
    """A release created and deployed through the API, its run ended as the worker would: its id."""
    created = deployer.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": env, "sha": "abcdef1", "version": version}
    )
    assert created.status_code == 201, created.content
    release_id = created.json()["id"]
    started = deployer.post(f"/api/releases/{release_id}/deploy/")
    assert started.status_code == 202, started.content
    assert runs.finish(WorkflowRun.objects.get(pk=started.json()["id"]), succeeded=True)
    return release_id


@pytest.fixture
def two_deploys(deployer):
    return deployed(deployer, "2.0.0"), deployed(deployer, "2.0.1")


def succession(body: dict) -> tuple:
    return body["isCurrent"], body["supersededBy"], body["supersededAt"]


def test_a_release_not_superseded_says_so_with_nulls(viewer):
    body = viewer.get("/api/releases/rel-123/").json()
    assert succession(body) == (True, None, None)
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="3")
    draft.save()
    assert succession(viewer.get(f"/api/releases/{draft.pk}/").json()) == (False, None, None)


def test_after_two_deploys_only_the_second_is_current_and_the_first_names_it(viewer, two_deploys):
    first_id, second_id = two_deploys
    first = viewer.get(f"/api/releases/{first_id}/").json()
    second = viewer.get(f"/api/releases/{second_id}/").json()
    assert second["status"] == "Active" and succession(second) == (True, None, None)
    assert first["status"] == "Active"
    assert succession(first) == (False, second_id, second["activatedAt"])
    # rel-123 runs in staging, another environment: still current there
    assert succession(viewer.get("/api/releases/rel-123/").json()) == (True, None, None)


def test_the_list_shows_the_same_fields(viewer, two_deploys):
    first_id, second_id = two_deploys
    listed = {r["id"]: succession(r) for r in viewer.get("/api/releases/?envId=env-prod").json()["results"]}
    assert listed[second_id] == (True, None, None)
    assert listed[first_id][:2] == (False, second_id)


def test_filter_is_current(viewer, two_deploys):
    first_id, second_id = two_deploys

    def ids(query):
        response = viewer.get(f"/api/releases/?{query}")
        assert response.status_code == 200, response.content
        return sorted(r["id"] for r in response.json()["results"])

    assert ids("isCurrent=true&envId=env-prod") == [second_id]
    assert ids("isCurrent=true") == sorted(["rel-123", second_id])
    assert ids("isCurrent=false&envId=env-prod") == [first_id]


def test_is_current_must_be_true_or_false(viewer):
    response = viewer.get("/api/releases/?isCurrent=maybe")
    assert response.status_code == 400
    assert response.json() == {"isCurrent": ["must be true or false."]}


@pytest.mark.parametrize(
    ("field", "value"),
    [("isCurrent", True), ("supersededBy", "rel-123"), ("supersededAt", "2024-10-01T18:36:12Z")],
)
def test_a_created_release_cannot_carry_its_succession(deployer, field, value):
    body = {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2.0.0", field: value}
    response = deployer.post("/api/releases/", body)
    assert response.status_code == 400
    assert response.json() == {field: [READ_ONLY]}
    assert not Release.objects.filter(environment_id="env-prod").exists()


def test_a_release_cannot_be_made_current_by_an_edit(deployer):
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="3")
    draft.save()
    response = deployer.patch(f"/api/releases/{draft.pk}/", {"isCurrent": True})
    assert response.status_code == 400
    assert response.json() == {"isCurrent": [READ_ONLY]}
    assert not Release.objects.get(pk=draft.pk).is_current
    # ...nor an Active one stopped being current
    response = deployer.patch("/api/releases/rel-123/", {"isCurrent": False})
    assert response.status_code == 400 and response.json() == {"isCurrent": [READ_ONLY]}
    assert Release.objects.get(pk="rel-123").is_current
    # ...and 1 is not true: the same value, another type
    response = deployer.patch("/api/releases/rel-123/", {"isCurrent": 1})
    assert response.status_code == 400 and response.json() == {"isCurrent": [READ_ONLY]}


def test_a_get_body_can_be_put_back(deployer):
    # Read-only values that change nothing are accepted (DomainSerializer.refusals), so what a GET gave can
    # be PUT back, as it could before these fields existed: here isCurrent false, supersededBy and
    # supersededAt null.
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="3")
    draft.save()
    url = f"/api/releases/{draft.pk}/"
    body = deployer.get(url).json()
    assert succession(body) == (False, None, None)
    response = deployer.put(url, body)
    assert response.status_code == 200, response.json()


# --- the admin ---


def test_the_admin_release_list_filters_by_is_current_and_shows_it(client, deployer, two_deploys):
    first_id, second_id = two_deploys
    staff = sign_in(client, "admin")
    response = staff.get("/admin/releases/release/?is_current__exact=1")
    assert response.status_code == 200
    listed = {release.pk for release in response.context["cl"].result_list}
    assert listed == {"rel-123", second_id}
    page = response.content.decode()
    assert "column-is_current" in page  # the column's header
    cells = re.findall(r'<td class="field-is_current"><img [^>]*alt="(\w+)"', page)
    assert cells == ["True", "True"]
    assert first_id not in page

    not_current = staff.get("/admin/releases/release/?is_current__exact=0")
    assert {release.pk for release in not_current.context["cl"].result_list} == {first_id}
