"""GraphQL end to end, as a client program uses it: a real GraphQL client library (gql, over HTTP with
requests, validating each document against the schema it fetched by introspection) against the real web
server and worker. A release is created, deployed and promoted through mutations, and followed through
queries until the worker has made it Active."""

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport

from tests.conftest import TOKENS
from tests.environment import wait_for

pytestmark = pytest.mark.usefixtures("committed_demo")  # env-prod open at every hour: tests.live.load_demo


def client(url: str, role: str | None) -> Client:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    transport = RequestsHTTPTransport(url=f"{url}/graphql/", headers=headers, retries=0, timeout=30)
    return Client(transport=transport, fetch_schema_from_transport=role is not None)


CREATE = gql("""
mutation Create($input: ReleaseCreateInput!) {
  releaseCreate(input: $input) { release { id status } errors { field code message } }
}""")
DEPLOY = gql("""
mutation Deploy($id: ID!) {
  releaseDeploy(id: $id) { run { id kind state actor } errors { field code message } }
}""")
PROMOTE = gql("""
mutation Promote($id: ID!, $envId: ID!) {
  releasePromote(id: $id, envId: $envId) {
    release { id envId } run { id kind sourceReleaseId } errors { code message }
  }
}""")
RELEASE = gql("""
query Release($id: ID!) {
  release(id: $id) { id status isCurrent timeline { kind state actor logs { level message } } }
}""")
INDEX = gql("""
query Index { servicesIndex(q: "svc-demo") { edges { node { id environments { id currentRelease { id version } } } } } }
""")
TRAIL = gql("""
query Trail($id: ID!) { auditEvents(subjectId: $id) { edges { node { action actor } } } }
""")


def ask(gateway, document, variables: dict) -> dict:
    return gateway.execute(GraphQLRequest(document, variable_values=variables))


def until_active(gateway: Client, release_id: str) -> dict:
    def settled():
        release = ask(gateway, RELEASE, {"id": release_id})["release"]
        return release if release["status"] in ("Active", "Failed") else None

    release = wait_for(settled, timeout=60, what=f"{release_id} to finish rolling out")
    assert release["status"] == "Active", release
    return release


def test_deploy_and_promote_through_a_graphql_client(web, worker):
    url = web()
    worker()
    deployer = client(url, "deployer")
    with deployer as gateway:
        release = {"serviceId": "svc-demo", "envId": "env-staging", "sha": "c0ffee1", "version": "2026.11.27"}
        created = ask(gateway, CREATE, {"input": release})["releaseCreate"]
        assert created["errors"] == [] and created["release"]["status"] == "Draft"
        release_id = created["release"]["id"]

        deployed = ask(gateway, DEPLOY, {"id": release_id})["releaseDeploy"]
        assert deployed["errors"] == []
        assert deployed["run"] | {"id": None} == {
            "id": None,
            "kind": "Deploy",
            "state": "Running",
            "actor": "dev-deployer",
        }

        release = until_active(gateway, release_id)
        assert release["isCurrent"] is True
        (run,) = release["timeline"]
        assert run["state"] == "Succeeded" and run["logs"], run

        promoted = ask(gateway, PROMOTE, {"id": release_id, "envId": "env-prod"})["releasePromote"]
        assert promoted["errors"] == [] and promoted["release"]["envId"] == "env-prod"
        assert promoted["run"]["kind"] == "Promote" and promoted["run"]["sourceReleaseId"] == release_id
        until_active(gateway, promoted["release"]["id"])

        (entry,) = [edge["node"] for edge in gateway.execute(INDEX)["servicesIndex"]["edges"]]
        current = {env["id"]: env["currentRelease"] for env in entry["environments"]}
        assert current["env-prod"] == {"id": promoted["release"]["id"], "version": "2026.11.27"}
        assert current["env-staging"]["id"] == release_id

        trail = [edge["node"] for edge in ask(gateway, TRAIL, {"id": release_id})["auditEvents"]["edges"]]
        assert {"action": "deploy.create", "actor": "dev-deployer"} in trail
        assert "release.activate" in {event["action"] for event in trail}


def test_the_client_sees_refusals(web):
    url = web()
    with client(url, "viewer") as gateway:
        refused = ask(gateway, DEPLOY, {"id": "rel-123"})["releaseDeploy"]
    assert refused["run"] is None
    needs = "release.deploy needs the deployer role; dev-viewer has viewer."
    assert refused["errors"] == [{"field": None, "code": "FORBIDDEN", "message": needs}]
    # No credentials: HTTP 401, whose GraphQL error the client raises.
    with pytest.raises(TransportQueryError) as anonymous, client(url, None) as gateway:
        gateway.execute(INDEX)
    assert anonymous.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
