"""`GET /api/releases/{id}/deploy-preview/` and `…/promote-preview/?envId=`: what the dashboard's confirmation
says (overview.previews), over REST for the CLI, answering as the POST would (403, 400, 409) and writing nothing.

The demo data: svc-demo, linked to env-staging and env-prod (policy:change-window:weekday, Mon-Fri 09:00-17:00
Europe/Berlin; policy:requires:env-staging; policy:incident-gate:critical); rel-123 Active and current in
env-staging; inc-789, high and open. Time stands still on a Monday, in the window (11:00 in Berlin), unless a test
moves it."""

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import time_machine

from audit.models import AuditEvent
from incidents.models import Incident
from overview import previews
from releases import lifecycle
from releases.models import Release, WorkflowRun
from services import lifecycle as services_lifecycle
from services.models import DASH, Environment, Service

DEPLOY = "/api/releases/{}/deploy-preview/"
PROMOTE = "/api/releases/{}/promote-preview/"
POLICY = ["policy:change-window:weekday", "policy:requires:env-staging", "policy:incident-gate:critical"]
REFS = "policy refs: " + ", ".join(POLICY)
OPEN = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # Monday 11:00 in Berlin
CLOSED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # Saturday
ALLOWED = {"allowed": True, "deniedBy": [], "nextAllowedAt": None}


@pytest.fixture(autouse=True)
def monday():
    with time_machine.travel(OPEN, tick=False):
        yield


def at(template: str, release_id: str, query: dict | None = None) -> str:
    return template.format(release_id) + (f"?{urlencode(query)}" if query else "")


@pytest.fixture
def svc(shipped_demo):
    return Service.objects.get(pk="svc-demo")


@pytest.fixture
def prod(shipped_demo):
    return Environment.objects.get(pk="env-prod")


@pytest.fixture
def current_in_prod(svc, prod, make_release):
    release = make_release(service=svc, environment=prod, sha="1234abc", version="2024.10.01")
    lifecycle.activate(lifecycle.begin_rollout(release))
    return release


@pytest.fixture
def draft_in_prod(svc, prod, make_release):
    return make_release(service=svc, environment=prod, sha="4f2a9c1d", version="2024.10.02")


def test_a_deploy_preview_says_what_it_replaces_the_open_incidents_and_the_policy_refs(
    deployer, svc, current_in_prod, draft_in_prod
):
    Incident(service=svc, severity="low", link="https://pd.example.com/2").save()
    response = deployer.get(DEPLOY.format(draft_in_prod.pk))
    assert response.status_code == 200, response.content
    # A release created in env-prod reaches it only by promotion (policy:requires:env-staging): no time allows it.
    # The preview's decision is what the POST then meets, word for word.
    refused = deployer.post(f"/api/releases/{draft_in_prod.pk}/deploy/").json()
    assert [d["policy"] for d in refused["decision"]["deniedBy"]] == ["policy:requires:env-staging"]
    assert refused["decision"]["nextAllowedAt"] is None
    assert response.json() == {
        "action": "deploy",
        "releaseId": draft_in_prod.pk,
        "serviceId": "svc-demo",
        "version": "2024.10.02",
        "sha": "4f2a9c1d",
        "envId": "env-prod",
        "replaces": current_in_prod.pk,
        "openIncidents": {"low": 1, "high": 1},
        "highestSeverity": "high",
        "policyRefs": POLICY,
        "decision": refused["decision"],
        "text": f"{draft_in_prod.pk} (2024.10.02, 4f2a9c1) replaces {current_in_prod.pk} in env-prod; svc-demo has "
        f"2 open incidents (highest: high); {REFS}. {refused['detail']}",
    }
    assert list(response.json()["openIncidents"]) == ["low", "high"]  # lowest first, as the dashboard lists them
    assert response.json()["text"] == previews.deploy_preview(draft_in_prod).text


def test_a_first_release_replaces_nothing_and_with_no_incident_open_the_highest_is_null(deployer, draft_in_prod):
    assert deployer.post("/api/incidents/inc-789/resolve/").status_code == 200  # the demo's one open incident
    body = deployer.get(DEPLOY.format(draft_in_prod.pk)).json()
    assert (body["replaces"], body["openIncidents"], body["highestSeverity"]) == (None, {}, None)
    assert body["text"].startswith(
        f"{draft_in_prod.pk} (2024.10.02, 4f2a9c1) becomes the first release of svc-demo in env-prod; "
        f"svc-demo has no open incidents; {REFS}. Refused by policy"
    )


def test_a_promote_preview_names_the_release_it_promotes_from_and_where_it_goes(deployer, shipped_demo):
    response = deployer.get(at(PROMOTE, "rel-123", {"envId": "env-prod"}))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "action": "promote",
        "releaseId": "rel-123",
        "serviceId": "svc-demo",
        "version": "2024.10.01",
        "sha": "9f3b7de",
        "envId": "env-prod",
        "replaces": None,
        "openIncidents": {"high": 1},
        "highestSeverity": "high",
        "policyRefs": POLICY,
        "decision": ALLOWED,
        "text": "rel-123 (2024.10.01, 9f3b7de), promoted from env-staging as a new release, becomes the first "
        f"release of svc-demo in env-prod; svc-demo has 1 open incident (highest: high); {REFS}",
    }


def test_a_preview_the_policies_refuse_carries_the_decision_the_post_meets(deployer, shipped_demo):
    """Not a 409: break-glass may still override it, so the preview says what would happen and why it is refused;
    its decision is the POST's, word for word."""
    with time_machine.travel(CLOSED, tick=False):
        preview = deployer.get(at(PROMOTE, "rel-123", {"envId": "env-prod"}))
        posted = deployer.post("/api/releases/rel-123/promote/", {"envId": "env-prod"})
    assert preview.status_code == 200 and posted.status_code == 409
    assert (
        preview.json()["decision"]
        == posted.json()["decision"]
        == {
            "allowed": False,
            "deniedBy": [
                {
                    "policy": "policy:change-window:weekday",
                    "reason": f"outside weekday (Mon{DASH}Fri 09:00{DASH}17:00 Europe/Berlin)",
                }
            ],
            "nextAllowedAt": "2026-12-07T08:00:00Z",  # Monday 09:00 in Berlin
        }
    )
    assert preview.json()["text"].endswith(f"{REFS}. {posted.json()['detail']}")


def test_a_promote_preview_says_which_release_it_replaces(deployer, current_in_prod):
    body = deployer.get(at(PROMOTE, "rel-123", {"envId": "env-prod"})).json()
    assert body["replaces"] == current_in_prod.pk
    assert f"replaces {current_in_prod.pk} in env-prod" in body["text"]


# Each answers as the POST does: the same status and body.
REFUSED = [
    (DEPLOY, "rel-123", {}, 409, "release rel-123 is Active: it cannot move to Promoting; it is final."),
    (PROMOTE, "rel-123", {"envId": "env-staging"}, 409, "release rel-123 is already in env-staging"),
    (PROMOTE, "draft", {"envId": "env-staging"}, 409, "is Draft: only an Active release can be promoted."),
    (PROMOTE, "rel-123", {}, 400, "This field is required."),
    (PROMOTE, "rel-123", {"envId": ""}, 400, "This field may not be blank."),
    (PROMOTE, "rel-123", {"envId": "env-nope"}, 400, "unknown environment 'env-nope'."),
    (PROMOTE, "rel-123", {"envId": "unlinked"}, 400, "is not linked to service 'svc-demo' (linked: env-staging"),
    (PROMOTE, "rel-123", {"envId": "archived"}, 400, "environment 'env-prod' is archived."),
]


@pytest.mark.parametrize("url, release_id, query, status, says", REFUSED)
def test_a_refusal_is_what_the_post_answers(
    deployer, draft_in_prod, make_environment, url, release_id, query, status, says
):
    release_id = draft_in_prod.pk if release_id == "draft" else release_id
    if query.get("envId") == "unlinked":
        query = {"envId": make_environment(name="qa").pk}
    if query.get("envId") == "archived":
        services_lifecycle.archive(Environment.objects.get(pk="env-prod"))
        query = {"envId": "env-prod"}
    preview = deployer.get(at(url, release_id, query))
    action = url.format(release_id).replace("-preview/", "/")
    posted = deployer.post(action, query)  # the query as the body
    assert (preview.status_code, preview.json()) == (posted.status_code, posted.json())
    assert preview.status_code == status
    assert says in str(preview.json()), preview.json()
    if status == 400:
        assert list(preview.json()) == ["envId"]


@pytest.mark.parametrize("url, action", [(DEPLOY, "deploy"), (PROMOTE, "promote")])
def test_it_takes_the_actions_permission(api, draft_in_prod, url, action):
    path = at(url, "rel-123", {"envId": "env-prod"} if action == "promote" else {})
    refused = api("viewer").get(path)
    assert refused.status_code == 403
    assert refused.json() == {"detail": f"release.{action} needs the deployer role; dev-viewer has viewer."}
    assert refused.json() == api("viewer").post(f"/api/releases/rel-123/{action}/", {"envId": "env-prod"}).json()
    assert api("viewer").client.head(path).status_code == 403  # HEAD is no way round it
    anonymous = api(None).get(path)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == 'Bearer realm="controlplane"'


@pytest.mark.parametrize("url", [DEPLOY, PROMOTE])
@pytest.mark.parametrize("release_id", ["rel-nope", "rel-NOPE", "rel-%00"])
def test_an_unknown_or_malformed_release_is_404(deployer, url, release_id):
    assert deployer.get(at(url, release_id, {"envId": "env-prod"} if url == PROMOTE else {})).status_code == 404


def test_unknown_and_repeated_query_parameters_are_refused_by_name(deployer):
    response = deployer.get(DEPLOY.format("rel-123") + "?envId=env-prod&x=1")
    assert response.status_code == 400
    assert response.json() == {
        name: ["is not a parameter of the deploy preview (it takes none)."] for name in ("envId", "x")
    }
    response = deployer.get(PROMOTE.format("rel-123") + "?envId=env-prod&envid=env-prod")
    assert response.json() == {"envid": ["is not a parameter of the promote preview (it takes envId)."]}
    response = deployer.get(PROMOTE.format("rel-123") + "?envId=env-prod&envId=env-staging")
    assert (response.status_code, response.json()) == (400, {"envId": ["is given more than once."]})


@pytest.mark.parametrize("url", [DEPLOY, PROMOTE])
def test_only_get_and_head(deployer, shipped_demo, url):
    path = at(url, "rel-123", {"envId": "env-prod"} if url == PROMOTE else {})
    head = deployer.client.head(path)
    assert head.status_code == deployer.get(path).status_code and head.content == b""
    for method in ("post", "put", "patch", "delete", "options"):
        assert getattr(deployer.client, method)(path).status_code == 405


def test_a_constant_number_of_queries(deployer, current_in_prod, draft_in_prod, django_assert_num_queries):
    # The release, whether a run awaits approval there, whether another is promoting there, the read model's two
    # rows; the policies' facts: the windows named, the freezes, the service's open incidents (the incident gate),
    # how the release came (requires).
    with django_assert_num_queries(9):
        assert deployer.get(DEPLOY.format(draft_in_prod.pk)).status_code == 200
    # And the environment, and the new release's rules (its service and environment, archived or not, linked);
    # the policies' facts but how it came (the promoted release is the source).
    with django_assert_num_queries(14):
        assert deployer.get(at(PROMOTE, "rel-123", {"envId": "env-prod"})).status_code == 200


def test_nothing_is_written(deployer, draft_in_prod, make_environment):
    unlinked = make_environment(name="qa").pk
    counts = [model.objects.count() for model in (AuditEvent, Release, WorkflowRun)]
    for path, status in [
        (at(DEPLOY, draft_in_prod.pk), 200),
        (at(DEPLOY, "rel-123"), 409),
        (at(PROMOTE, "rel-123", {"envId": "env-prod"}), 200),
        (at(PROMOTE, "rel-123", {"envId": unlinked}), 400),
    ]:
        assert deployer.get(path).status_code == status
    assert [model.objects.count() for model in (AuditEvent, Release, WorkflowRun)] == counts
    assert Release.objects.get(pk=draft_in_prod.pk).status == "Draft"


def test_another_release_promoting_there_is_foreseen_as_the_posts_409(deployer, svc, prod, draft_in_prod, make_release):
    rolling = make_release(service=svc, environment=prod, sha="abcdef1", version="2024.10.09")
    lifecycle.begin_rollout(rolling)
    busy = f"another release of {svc.pk} is already promoting to {prod.pk}."

    deploy = deployer.get(DEPLOY.format(draft_in_prod.pk))
    promote = deployer.get(at(PROMOTE, "rel-123", {"envId": prod.pk}))

    assert (deploy.status_code, deploy.json()) == (409, {"detail": busy})
    assert (promote.status_code, promote.json()) == (409, {"detail": busy})
    # What the POSTs then answer, word for word.
    assert deployer.post(f"/api/releases/{draft_in_prod.pk}/deploy/").json() == {"detail": busy}
    assert deployer.post("/api/releases/rel-123/promote/", {"envId": prod.pk}).json() == {"detail": busy}
