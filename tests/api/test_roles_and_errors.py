"""Every endpoint by role, and every class of bad request answered without a 500."""

import json

import pytest

from tests.conftest import loaded_once

demo = loaded_once("demo")  # every test here runs on the demo data, loaded once for the module

ROLES = [None, "viewer", "deployer", "admin"]
RANK = {None: 0, "viewer": 1, "deployer": 2, "admin": 3}

# (method, url, body, least role, status when allowed)
ENDPOINTS = [
    ("get", "/api/me/", None, "viewer", 200),
    ("get", "/api/services/", None, "viewer", 200),
    ("get", "/api/services/index/", None, "viewer", 200),
    ("get", "/api/services/svc-demo/", None, "viewer", 200),
    (
        "post",
        "/api/services/",
        {"name": "S", "repo": "github.com/a/s", "adapters": {"deployments": ["aws"]}},
        "admin",
        201,
    ),
    ("patch", "/api/services/svc-demo/", {"name": "Renamed"}, "admin", 200),
    ("delete", "/api/services/svc-demo/", None, "admin", 204),
    ("get", "/api/environments/", None, "viewer", 200),
    ("post", "/api/environments/", {"name": "qa"}, "admin", 201),
    ("patch", "/api/environments/env-staging/", {"cluster": "c1"}, "admin", 200),
    ("delete", "/api/environments/env-staging/", None, "admin", 204),
    ("get", "/api/releases/", None, "viewer", 200),
    ("get", "/api/releases/rel-123/", None, "viewer", 200),
    ("get", "/api/releases/rel-123/timeline/", None, "viewer", 200),
    (
        "post",
        "/api/releases/",
        {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2"},
        "deployer",
        201,
    ),
    ("get", "/api/workflow-runs/", None, "viewer", 200),
    ("get", "/api/workflow-runs/run-456/", None, "viewer", 200),
    ("get", "/api/incidents/", None, "viewer", 200),
    (
        "post",
        "/api/incidents/",
        {"serviceId": "svc-demo", "severity": "low", "link": "https://pd.example.com/1"},
        "deployer",
        201,
    ),
    ("patch", "/api/incidents/inc-789/", {"severity": "critical"}, "deployer", 200),
    ("post", "/api/incidents/inc-789/resolve/", None, "deployer", 200),
    ("get", "/api/audit-events/", None, "viewer", 200),
    ("get", "/api/audit-events/1/", None, "viewer", 200),
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize(
    ("method", "url", "body", "least", "allowed"),
    ENDPOINTS,
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None,
)
def test_endpoint_by_role(api, role, method, url, body, least, allowed):
    response = getattr(api(role), method)(url, body) if body is not None else getattr(api(role), method)(url)
    if role is None:
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    elif RANK[role] < RANK[least]:
        assert response.status_code == 403
        assert f"needs the {least} role; dev-{role} has {role}." in response.json()["detail"]
    else:
        assert response.status_code == allowed, response.content


def test_unknown_resources_are_404(viewer):
    for url in ("/api/services/svc-nope/", "/api/releases/rel-nope/", "/api/audit-events/999/", "/api/nothing/"):
        assert viewer.get(url).status_code == 404


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "url",
    [
        "/api/services/SVC-DEMO/",
        "/api/releases/rel_123/timeline/",
        "/api/incidents/inc-%00/acknowledge/",
        "/api/workflow-runs/RUN-456/logs/stream",
        "/api/nothing/",
    ],
)
def test_a_path_outside_the_id_pattern_is_the_apis_json_404_debug_or_not(admin, settings, debug, url):
    settings.DEBUG = debug  # Django's own 404 for a path that matches nothing is an HTML page in DEBUG
    for method in ("get", "post", "delete"):
        response = getattr(admin, method)(url)
        assert (response.status_code, response["Content-Type"]) == (404, "application/json"), method
        assert response.json() == {"detail": "Not found."}


def test_an_api_path_missing_its_slash_is_a_404_that_says_so(admin):
    response = admin.post("/api/environments", {"name": "qa"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found; API paths end in a slash: /api/environments/."}


@pytest.mark.parametrize(
    "url", ["/api/audit-events/stream/", "/api/workflow-runs/run-456/logs/stream/"], ids=["audit", "run log"]
)
def test_a_stream_path_given_a_final_slash_is_a_404_that_says_so(admin, url):
    response = admin.get(url)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Not found; a stream's path ends without a slash: {url[:-1]}."}


@pytest.mark.parametrize("value", ["json", "xml", "api"])
@pytest.mark.parametrize("url", ["/api/services/", "/api/services/svc-demo/", "/api/me/", "/api/services/index/"])
def test_format_is_a_parameter_like_any_other_never_a_404(viewer, url, value):
    # DRF's ?format= override answered ?format=xml with "Not found." for a resource that exists.
    response = viewer.get(f"{url}?format={value}")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["format"] and "is not a parameter of this endpoint" in response.json()["format"][0]


def test_the_schema_still_takes_its_format(viewer):
    assert viewer.get("/api/schema/?format=json").json()["openapi"].startswith("3.")


def test_unknown_method_is_405(admin):
    response = admin.put("/api/audit-events/1/", {"actor": "x"})
    assert response.status_code == 405


def test_non_json_bodies_are_415(admin):
    response = admin.post("/api/environments/", "name=qa", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_malformed_json_is_400(admin):
    response = admin.post("/api/environments/", '{"name": ', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_a_json_array_instead_of_an_object_is_400(admin):
    response = admin.post("/api/environments/", [1, 2])
    assert response.status_code == 400


def test_an_oversized_body_is_413(admin, settings):
    body = json.dumps({"name": "qa", "policyRefs": ["policy:x"] * 200_000})
    response = admin.post("/api/environments/", body)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


def test_page_size_has_a_hard_maximum(viewer, admin, settings):
    settings.API_MAX_PAGE_SIZE = 3  # read when each request builds its page
    for n in range(5):
        admin.post("/api/environments/", {"name": f"many-{n}"})
    assert len(viewer.get("/api/environments/?pageSize=3").json()["results"]) == 3
    response = viewer.get("/api/environments/?pageSize=4")
    assert response.status_code == 400 and response.json() == {"pageSize": ["must be a whole number from 1 to 3."]}


def test_a_bad_cursor_is_400_not_500(viewer):
    response = viewer.get("/api/releases/?cursor=garbage")
    assert response.status_code == 400 and response.json() == {"cursor": ["is not a cursor this API issued."]}


def test_a_conflict_is_409_with_what_is_allowed(deployer):
    response = deployer.post("/api/incidents/inc-789/acknowledge/")
    assert response.status_code == 409
    assert (
        response.json()["detail"]
        == "incident inc-789 is acknowledged: it cannot move to acknowledged; it can move to resolved."
    )


@pytest.mark.parametrize(
    "since", ["9337-11-10T08:41:09+23:59", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "tomorrow"]
)
def test_time_filters_at_the_edges_of_the_calendar_never_500(viewer, since):
    response = viewer.get(f"/api/audit-events/?since={since.replace('+', '%2B')}")
    assert response.status_code in (200, 400)
