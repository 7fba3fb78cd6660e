import json

import pytest
from django.test import Client

from tests.conftest import TOKENS


class GraphQL:
    """A GraphQL client for one role (None: no credentials): `gql(document, **variables)` → the response."""

    def __init__(self, role: str | None):
        self.client = Client(**({"HTTP_AUTHORIZATION": f"Bearer {TOKENS[role]}"} if role else {}))

    def post(self, document: str, **variables):
        body = {"query": document, **({"variables": variables} if variables else {})}
        return self.client.post("/graphql/", json.dumps(body), content_type="application/json")

    def __call__(self, document: str, **variables) -> dict:
        """The `data` of a document that must succeed (no `errors`)."""
        response = self.post(document, **variables)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]


@pytest.fixture
def graphql(db):
    return GraphQL


@pytest.fixture
def viewer(graphql):
    return graphql("viewer")


@pytest.fixture
def deployer(graphql):
    return graphql("deployer")


@pytest.fixture
def admin(graphql):
    return graphql("admin")
