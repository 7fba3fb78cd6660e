"""API tokens through REST, as a CI pipeline and its operator use them: issued once, stored as a hash, scoped,
expiring, revoked at once, audited, and never shown again."""

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from audit.models import AuditEvent
from releases.models import Release, WorkflowRun
from tests.api.conftest import Api
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Europe's clocks go forward


def later(**delta) -> str:
    return (NOW + timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def issue(role="deployer", by="deployer", **fields) -> dict:
    body = {"name": "ci-deploy", "role": role, "expiresAt": later(days=30), **fields}
    response = Api(by).post("/api/tokens/", body)
    assert response.status_code == 201, response.content
    return response.json()


def with_token(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_a_token_is_shown_once_stored_as_a_hash_and_says_who_it_is(demo, clock):
    issued = issue(envIds=["env-staging"])
    secret = issued.pop("token")
    assert secret.startswith("cpat_") and len(secret) > 40
    assert issued["id"].startswith("tok-") and issued["prefix"] == secret[:12]
    assert issued["role"] == "deployer" and issued["envIds"] == ["env-staging"] and issued["owner"] == "dev-deployer"
    assert issued["expiresAt"] == later(days=30) and issued["lastUsedAt"] is None and issued["revokedAt"] is None
    stored = ApiToken.objects.values().get(pk=issued["id"])
    assert secret not in str(stored)  # a hash, never the token
    listed = Api("deployer").get("/api/tokens/")
    assert secret not in listed.content.decode() and listed.json()["results"] == [issued | {"lastUsedAt": None}]

    me = with_token(secret).get("/api/me/").json()
    assert me == {
        "actor": f"dev-deployer via {issued['id']}",
        "role": "deployer",
        "authMethod": "apiToken",
        "tokenId": issued["id"],
        "owner": "dev-deployer",
    }
    assert ApiToken.objects.get(pk=issued["id"]).last_used_at == NOW


def test_issuing_and_revoking_are_audited_and_a_revoked_token_is_refused_at_once(demo, clock):
    issued = issue()
    client = with_token(issued["token"])
    assert client.get("/api/me/").status_code == 200
    assert Api("deployer").delete(f"/api/tokens/{issued['id']}/").status_code == 204
    refused = client.get("/api/me/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": f"the API token {issued['id']} was revoked at {later()}."}
    # Revoking again changes nothing, and audits nothing more.
    assert Api("deployer").delete(f"/api/tokens/{issued['id']}/").status_code == 204
    events = list(AuditEvent.objects.filter(subject_id=issued["id"]).values_list("action", "actor"))
    assert events == [("token.create", "dev-deployer"), ("token.revoke", "dev-deployer")]
    created = AuditEvent.objects.get(action="token.create").metadata
    assert created["role"] == "deployer" and issued["token"] not in str(created)


def test_an_expired_token_is_refused_saying_so_across_a_dst_change(demo, clock):
    issued = issue(expiresAt="2026-03-29T03:30:00+02:00")  # 01:30 UTC, after Europe's clocks went forward
    client = with_token(issued["token"])
    clock.move_to(NOW + timedelta(minutes=59))
    assert client.get("/api/me/").status_code == 200
    clock.move_to(NOW + timedelta(hours=1))
    refused = client.get("/api/me/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": f"the API token {issued['id']} expired at 2026-03-29T01:30:00Z."}


@pytest.mark.parametrize(
    ("fields", "key", "says"),
    [
        ({"role": "admin"}, "role", "at most your own role (deployer)"),
        ({"role": "owner"}, "role", "is not a valid choice"),
        ({"expiresAt": None}, "expiresAt", "null"),
        ({"expiresAt": "2026-04-01T00:00:00"}, "expiresAt", "RFC 3339"),
        ({"expiresAt": "2026-03-28T00:00:00Z"}, "expiresAt", "in the future"),
        ({"expiresAt": "2027-03-30T00:30:00Z"}, "expiresAt", "at most one year"),
        ({"envIds": ["env-nowhere"]}, "envIds", "unknown environment 'env-nowhere'"),
        ({"envIds": []}, "envIds", "at least one"),
        ({"envIds": ["env-staging", "env-staging"]}, "envIds", "distinct"),
        ({"name": " "}, "name", "blank"),
        ({"name": "x" * 101}, "name", "100"),
        ({"name": "ci cpat_abcdefghijklmnopqrstuvwxyz"}, "name", "an API token"),
        ({"token": "cpat_mine"}, "token", "not a field"),
    ],
)
def test_a_token_that_breaks_a_rule_is_a_400_naming_the_field(demo, clock, fields, key, says):
    body = {"name": "ci", "role": "deployer", "expiresAt": later(days=1), **fields}
    response = Api("deployer").post("/api/tokens/", body)
    assert response.status_code == 400, response.content
    assert key in response.json() and says in " ".join(response.json()[key]), response.json()
    assert not ApiToken.objects.exists()


def test_a_token_cannot_issue_tokens(demo, clock):
    issued = issue(role="deployer", by="admin")
    body = {"name": "ci-2", "role": "viewer", "expiresAt": later(days=1)}
    refused = with_token(issued["token"]).post("/api/tokens/", body, content_type="application/json")
    assert refused.status_code == 403 and "an API token cannot issue API tokens" in refused.json()["detail"]


def test_each_sees_and_revokes_their_own_and_an_admin_all(demo, clock):
    mine, theirs = issue(by="deployer"), issue(role="viewer", by="viewer")
    listed = [t["id"] for t in Api("deployer").get("/api/tokens/").json()["results"]]
    assert listed == [mine["id"]]
    assert Api("deployer").delete(f"/api/tokens/{theirs['id']}/").status_code == 404
    assert {t["id"] for t in Api("admin").get("/api/tokens/").json()["results"]} == {mine["id"], theirs["id"]}
    assert Api("admin").delete(f"/api/tokens/{theirs['id']}/").status_code == 204


def test_a_scoped_token_deploys_only_where_it_may(demo, clock):
    issued = issue(envIds=["env-staging"])
    client = with_token(issued["token"])
    staging = Release.objects.create(service_id="svc-demo", environment_id="env-staging", sha="abcdef1", version="9")
    prod = Release.objects.create(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="9")
    refused = client.post(f"/api/releases/{prod.pk}/deploy/", "{}", content_type="application/json")
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": f"API token {issued['id']} is scoped to environments env-staging; env-prod is outside its scope."
    }
    assert not WorkflowRun.objects.filter(release=prod).exists()
    started = client.post(f"/api/releases/{staging.pk}/deploy/", "{}", content_type="application/json")
    assert started.status_code == 202
    run = WorkflowRun.objects.get(pk=started.json()["id"])
    assert run.actor == f"dev-deployer via {issued['id']}"
    assert AuditEvent.objects.filter(action="deploy.create").latest("seq").actor == run.actor


def test_tokens_work_with_dev_mode_off(demo, clock, settings):
    issued = issue()
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devMode": False}
    assert Api("deployer").get("/api/me/").status_code == 401  # dev tokens are off
    assert with_token(issued["token"]).get("/api/me/").json()["authMethod"] == "apiToken"


def test_an_unknown_token_of_the_shape_is_refused_like_any_unknown_token(demo):
    refused = with_token("cpat_" + "x" * 43).get("/api/me/")
    assert refused.status_code == 401 and refused.json() == {"detail": "the bearer token is not valid."}


def test_the_token_never_reaches_a_run_log_or_an_audit_event(demo, clock):
    issued = issue()
    from controlplane.redaction import redact

    assert issued["token"] not in redact(f"curl -H 'Authorization: {issued['token']}'")
    assert redact({"note": f"use {issued['token']}"}) == {"note": "use [REDACTED]"}


def test_a_known_token_costs_no_query_until_a_minute_has_passed(demo, clock, django_assert_num_queries, settings):
    settings.CONTROLPLANE_API_TOKEN_CACHE = True
    issued = issue()
    client = with_token(issued["token"])
    assert client.get("/api/me/").status_code == 200  # found, and its use recorded
    with django_assert_num_queries(0):
        assert client.get("/api/me/").status_code == 200
    clock.shift(timedelta(minutes=1))
    with django_assert_num_queries(2):  # asked again, and its use recorded again
        assert client.get("/api/me/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_revocation_reaches_another_process_on_its_next_request(committed_demo, web):
    url = web()
    body = {"name": "ci", "role": "viewer", "expiresAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    issued = Api("admin").post("/api/tokens/", body).json()

    def me() -> int:
        request = urllib.request.Request(f"{url}/api/me/", headers={"Authorization": f"Bearer {issued['token']}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    assert [me(), me()] == [200, 200]  # the server's process keeps it now
    assert Api("admin").delete(f"/api/tokens/{issued['id']}/").status_code == 204  # in this process, committed
    assert me() == 401
