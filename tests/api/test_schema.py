"""The API against its own OpenAPI schema: schemathesis generates requests from /api/schema/ and checks
that nothing answers 5xx and that every answer is one the schema documents, in the shape it documents."""

import re

import pytest
import schemathesis
import yaml
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from controlplane.wsgi import application
from tests.conftest import TOKENS, examples

# The streams (documented as text/event-stream) never end on their own: tests/workflows/test_streams.py has them.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application).exclude(path_regex="stream")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def demo_data(demo):
    """The demo data, and the WSGI app kept from closing the test's database connection after each request
    (as Django's own test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield demo
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=examples(12),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, demo_data):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['admin']}"}, checks=CHECKS)


def test_schema_and_docs_are_served_without_a_cdn(client, db):
    schema_response = client.get("/api/schema/")
    assert schema_response.status_code == 200 and b"openapi: 3" in schema_response.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower() and "//unpkg" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        url = page[: page.index(asset) + len(asset)].rsplit('"', 1)[-1]
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200


def test_the_streams_are_documented_as_event_streams_and_a_path_names_an_id_one_way(client, db):
    document = yaml.safe_load(client.get("/api/schema/").content)
    paths = document["paths"]
    for path in ("/api/audit-events/stream", "/api/workflow-runs/{id}/logs/stream"):
        answer = paths[path]["get"]["responses"]["200"]
        assert list(answer["content"]) == ["text/event-stream"], path
        assert "Last-Event-ID" in [p["name"] for p in paths[path]["get"]["parameters"]]
    assert "/api/streams/" in paths
    # A resource's own id is `{id}` wherever it stands; a nested one names itself (`{deliveryId}`).
    names = {name for path in paths for name in re.findall(r"\{(\w+)\}", path)}
    assert names == {"id", "seq", "deliveryId"}, names
