"""Who may do what over GraphQL: every mutation for every role (allowed, or FORBIDDEN naming the role it needs,
with nothing written), every role reads everything, and requests without valid credentials are 401s."""

import json

import pytest
from django.test import Client

from tests.api.conftest import Api
from tests.graphql.test_mutations import SAME_WRITES, _set_up, document, loaded_once, stored

# env-prod's window is open; checkDrift asks the k8s_platform fixture's cluster
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("window_open", "k8s_platform")]
demo = loaded_once("demo")

ROLES = ["viewer", "deployer", "admin"]
RANK = {"viewer": 1, "deployer": 2, "admin": 3}
# Each mutation: the permission it asks for and the least role that has it (docs/domain.md, "Roles").
NEEDS = {
    "serviceCreate": ("service.create", "admin"),
    "serviceUpdate": ("service.update", "admin"),
    "serviceArchive": ("service.archive", "admin"),
    "serviceRestore": ("service.archive", "admin"),
    "environmentCreate": ("environment.create", "admin"),
    "environmentUpdate": ("environment.update", "admin"),
    "environmentArchive": ("environment.archive", "admin"),
    "environmentRestore": ("environment.archive", "admin"),
    "releaseCreate": ("release.create", "deployer"),
    "releaseUpdate": ("release.update", "deployer"),
    "releaseDeploy": ("release.deploy", "deployer"),
    "releasePromote": ("release.promote", "deployer"),
    "incidentCreate": ("incident.create", "deployer"),
    "incidentUpdate": ("incident.update", "deployer"),
    "incidentAcknowledge": ("incident.acknowledge", "deployer"),
    "incidentResolve": ("incident.resolve", "deployer"),
    "changeWindowCreate": ("changewindow.create", "admin"),
    "changeWindowUpdate": ("changewindow.update", "admin"),
    "freezeCreate": ("freeze.create", "admin"),
    "freezeUpdate": ("freeze.update", "admin"),
    "workflowRunApprove": ("run.approve", "deployer"),
    "workflowRunReject": ("run.reject", "deployer"),
    "workflowRunCancel": ("run.cancel", "deployer"),
    "serviceRollback": ("rollback", "deployer"),
    "checkDrift": ("drift.check", "deployer"),
}
WRITES = {name: (arguments, request) for name, arguments, _, request in SAME_WRITES}


def test_every_mutation_is_in_the_matrix(graphql):
    fields = graphql("viewer")("{ __schema { mutationType { fields { name } } } }")["__schema"]["mutationType"]
    names = {field["name"] for field in fields["fields"]} - OWN_TOKENS - INTEGRATIONS
    assert sorted(names) == sorted(NEEDS) == sorted(WRITES)


# Every role manages its own API tokens (the rules are the tokens', not the role table's): tests/graphql/test_tokens.py.
OWN_TOKENS = {"tokenCreate", "tokenRevoke"}
# Integrations' and webhooks' writes (admins only), for every role: tests/graphql/test_integrations.py.
INTEGRATIONS = {
    "integrationCreate",
    "integrationUpdate",
    "integrationRotateSecret",
    "webhookCreate",
    "webhookUpdate",
    "webhookRotateSecret",
    "webhookPing",
    "webhookRedeliver",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(NEEDS))
def test_a_mutation_by_role(graphql, name, role):
    action, least = NEEDS[name]
    arguments, _ = WRITES[name]
    _set_up(name)
    before = stored()
    payload = graphql(role)(document(name), **arguments)[name]
    if RANK[role] >= RANK[least]:
        assert payload["errors"] == [], payload
        assert stored() != before
        return
    assert payload["errors"] == [
        {"field": None, "code": "FORBIDDEN", "message": f"{action} needs the {least} role; dev-{role} has {role}."}
    ]
    assert all(value is None for key, value in payload.items() if key != "errors")
    assert stored() == before


@pytest.mark.parametrize(("name", "role"), [("serviceCreate", "deployer"), ("releaseDeploy", "viewer")])
def test_a_refusal_says_what_rest_says(graphql, name, role):
    arguments, (method, url, body) = WRITES[name]
    _set_up(name)
    message = graphql(role)(document(name), **arguments)[name]["errors"][0]["message"]
    api = Api(role)
    response = getattr(api, method)(url, body) if body is not None else getattr(api, method)(url)
    assert response.status_code == 403
    assert message == response.json()["detail"]


def test_the_role_is_checked_before_the_input(graphql):
    """A viewer learns nothing about the input's validity or the object's existence: only that it may not."""
    payload = graphql("viewer")(document("releaseDeploy"), id="rel-nope")["releaseDeploy"]
    assert [error["code"] for error in payload["errors"]] == ["FORBIDDEN"]
    payload = graphql("deployer")(
        document("serviceCreate"), input={"name": "", "repo": "x", "adapters": {"deployments": []}}
    )["serviceCreate"]
    assert [error["code"] for error in payload["errors"]] == ["FORBIDDEN"]


EVERYTHING = """
{
  me { actor role }
  service(id: "svc-demo") {
    id environments { id } releases { edges { node { id } } } incidents { edges { node { id } } }
    auditEvents { edges { node { seq } } } currentReleases { id }
  }
  services { edges { node { id } } }
  environment(id: "env-prod") {
    id services { edges { node { id } } } currentReleases { edges { node { id } } } placements { adapter }
  }
  environments { edges { node { id } } }
  release(id: "rel-123") { id runs { id } timeline { id } service { id } environment { id } }
  releases { edges { node { id } } }
  workflowRun(id: "run-456") { id logs { message } release { id } sourceRelease { id } }
  workflowRuns { edges { node { id } } }
  incident(id: "inc-789") { id service { id } }
  incidents { edges { node { id } } }
  auditEvents { edges { node { seq metadata } } }
  servicesIndex { edges { node { id environments { id } } } }
}
"""


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_everything(graphql, role):
    data = graphql(role)(EVERYTHING)
    assert data["me"] == {"actor": f"dev-{role}", "role": role}
    assert data["service"]["id"] == "svc-demo" and data["environment"]["services"]["edges"] == [
        {"node": {"id": "svc-demo"}}
    ]
    assert data["release"]["runs"] == [{"id": "run-456"}] and data["workflowRun"]["logs"] == [
        {"message": "Plan generated"}
    ]
    assert data["incident"]["service"] == {"id": "svc-demo"}
    for root in ("services", "environments", "releases", "workflowRuns", "incidents", "auditEvents", "servicesIndex"):
        assert data[root]["edges"], root


def _post(headers: dict, document_text: str):
    return Client(**headers).post("/graphql/", json.dumps({"query": document_text}), content_type="application/json")


MUTATION = 'mutation { incidentResolve(id: "inc-789") { incident { status } errors { code } } }'


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer not-a-token"}, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}],
    ids=["no credentials", "a bad bearer token", "not a bearer token"],
)
@pytest.mark.parametrize("document_text", ["{ me { actor } }", MUTATION], ids=["query", "mutation"])
def test_without_valid_credentials_is_401_and_writes_nothing(headers, document_text):
    before = stored()
    response = _post(headers, document_text)
    assert response.status_code == 401
    assert "data" not in response.json()
    if not headers:
        assert response["WWW-Authenticate"] == 'Bearer realm="controlplane"'
    assert stored() == before


def test_a_bad_bearer_token_is_refused_as_rest_refuses_it():
    graphql = _post({"HTTP_AUTHORIZATION": "Bearer not-a-token"}, "{ me { actor } }")
    rest = Api(None).get("/api/me/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert graphql.status_code == rest.status_code == 401
    assert graphql.get("WWW-Authenticate") == rest.get("WWW-Authenticate")
