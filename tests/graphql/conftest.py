import json
from contextlib import contextmanager

import pytest
import time_machine
from django.test import Client

from services.models import Environment
from tests.conftest import TOKENS

# Monday 10:00 in Berlin: the demo's change window on env-prod (weekdays 09:00-17:00 Europe/Berlin) is open.
WINDOW_OPEN = "2026-12-07T10:00:00+01:00"


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


@pytest.fixture
def window_open():
    """For tests about something else than the policies: a promotion into env-prod at an hour its change
    window allows (time runs on from there). tests/graphql/test_policies.py tests the gate itself."""
    with time_machine.travel(WINDOW_OPEN, tick=True):
        yield


@contextmanager
def before_the_policies(*env_ids: str):
    """A world's history made as it was before the policies (issue 22) could refuse it (a deploy of a release
    created in env-prod, which `policy:requires:env-staging` now refuses at any hour): the environments' refs set
    aside while it is made, by a queryset update (no validation, no audit event), and put back after."""
    environments = Environment.objects.filter(pk__in=env_ids)
    refs = dict(environments.values_list("pk", "policy_refs"))
    environments.update(policy_refs=[])
    try:
        yield
    finally:
        for pk, kept in refs.items():
            Environment.objects.filter(pk=pk).update(policy_refs=kept)
