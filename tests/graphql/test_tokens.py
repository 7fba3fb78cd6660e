"""API tokens over GraphQL: the same rules and words as REST's (tests/tokens), by another door."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from tokens.models import ApiToken

pytestmark = pytest.mark.django_db

CREATE = """mutation($input: TokenCreateInput!) {
  tokenCreate(input: $input) { token { id role envIds prefix owner revokedAt } secret errors { field code message } }
}"""
REVOKE = "mutation($id: ID!) { tokenRevoke(id: $id) { token { id revokedAt } errors { field code message } } }"
IN_A_MONTH = (datetime.now(UTC) + timedelta(days=30)).isoformat()
INPUT = {"name": "ci", "role": "viewer", "envIds": ["env-staging"], "expiresAt": IN_A_MONTH}


def test_a_token_is_issued_listed_used_and_revoked(graphql, demo):
    made = graphql("deployer")(CREATE, input=INPUT)["tokenCreate"]
    assert made["errors"] == [] and made["secret"].startswith("cpat_")
    token = made["token"]
    assert token["role"] == "viewer" and token["envIds"] == ["env-staging"] and token["owner"] == "dev-deployer"
    assert made["secret"][:12] == token["prefix"] and token["revokedAt"] is None

    listed = graphql("deployer")("{ tokens { edges { node { id } } } }")["tokens"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [token["id"]]
    assert graphql("viewer")("{ tokens { edges { node { id } } } }")["tokens"]["edges"] == []

    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {made['secret']}")
    me = bearer.post(
        "/graphql/", {"query": "{ me { actor authMethod tokenId owner } }"}, content_type="application/json"
    )
    assert me.json()["data"]["me"] == {
        "actor": f"dev-deployer via {token['id']}",
        "authMethod": "apiToken",
        "tokenId": token["id"],
        "owner": "dev-deployer",
    }

    assert graphql("viewer")(REVOKE, id=token["id"])["tokenRevoke"]["errors"][0]["code"] == "NOT_FOUND"
    revoked = graphql("deployer")(REVOKE, id=token["id"])["tokenRevoke"]
    assert revoked["errors"] == [] and revoked["token"]["revokedAt"]
    assert bearer.post("/graphql/", {"query": "{ me { actor } }"}, content_type="application/json").status_code == 401


def test_a_broken_rule_is_named_as_rest_names_it(graphql, demo):
    payload = graphql("deployer")(CREATE, input={**INPUT, "role": "admin"})["tokenCreate"]
    assert payload["token"] is None and payload["secret"] is None
    assert payload["errors"] == [
        {"field": "role", "code": "INVALID", "message": "must be at most your own role (deployer); admin is above it."}
    ]
    assert not ApiToken.objects.exists()
