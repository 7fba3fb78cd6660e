"""/graphql/ over HTTP: who may ask, what a request may be, and how it is refused (the view, not the schema)."""

import json
import logging
import re

import pytest
from django.test import Client

from controlplane.identity import schema as identity_schema
from incidents.models import Incident
from tests.conftest import TOKENS, sign_in

pytestmark = pytest.mark.django_db

ME = "{ me { actor role authMethod } }"


def test_no_credentials_is_401_with_the_bearer_challenge():
    response = Client().post("/graphql/", json.dumps({"query": ME}), content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="controlplane"'
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_bad_bearer_token_is_401():
    client = Client(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = client.post("/graphql/", json.dumps({"query": ME}), content_type="application/json")
    assert response.status_code == 401


def test_introspection_needs_a_signed_in_principal(graphql):
    introspection = "{ __schema { queryType { name } } }"
    assert graphql(None).post(introspection).status_code == 401
    assert graphql("viewer")(introspection) == {"__schema": {"queryType": {"name": "Query"}}}


def test_a_browser_without_a_session_is_sent_to_sign_in():
    response = Client().get("/graphql/", HTTP_ACCEPT="text/html")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fgraphql%2F"


def test_a_signed_in_browser_gets_graphiql_from_our_own_files(client):
    sign_in(client, "viewer")
    response = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/graphiql/graphiql.min.js" in page
    assert not re.findall(r'(?:src|href)="(?!/)', page), "every script, stylesheet and link is on this host"


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin"])
def test_me_names_the_caller(graphql, role):
    assert graphql(role)(ME) == {"me": {"actor": f"dev-{role}", "role": role, "authMethod": "devToken"}}


def test_a_query_can_be_sent_by_get(graphql):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    response = client.get("/graphql/", {"query": ME})
    assert response.status_code == 200 and response.json()["data"]["me"]["actor"] == "dev-viewer"


def test_a_mutation_by_get_is_refused_and_changes_nothing(demo):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['deployer']}")
    mutation = 'mutation { incidentResolve(id: "inc-789") { errors { message } } }'
    response = client.get("/graphql/", {"query": mutation}, HTTP_ACCEPT="application/json")
    assert response.status_code == 405
    assert "POST" in response.json()["errors"][0]["message"]
    assert Incident.objects.get(pk="inc-789").status == "acknowledged"


def test_other_methods_are_405():
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    assert client.put("/graphql/", "{}", content_type="application/json").status_code == 405


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", ME), ("application/x-www-form-urlencoded", f"query={ME}"), ("application/xml", "<q/>")],
)
def test_a_body_that_is_not_json_or_graphql_is_415(content_type, body):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    response = client.post("/graphql/", body, content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.json()["errors"][0]["message"]


def test_a_document_may_be_sent_as_application_graphql():
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    response = client.post("/graphql/", ME, content_type="application/graphql")
    assert response.status_code == 200 and response.json()["data"]["me"]["role"] == "viewer"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"query": ', "JSON parse error"),
        ('{"query": "{ me { actor } }", "query": "{ me { role } }"}', "query: appears more than once"),
        (json.dumps([{"query": ME}, {"query": ME}]), "no batches"),
        (json.dumps({"query": ME, "variables": [1]}), "variables must be a JSON object"),
        (json.dumps({"variables": {}}), "Must provide query string"),
        (json.dumps({"query": 5}), "query must be a string."),
        (json.dumps({"query": ["{ servicesIndex { edges { cursor } } }"]}), "query must be a string."),
        (json.dumps({"query": ME, "operationName": ["A"]}), "operationName must be a string."),
    ],
)
def test_a_malformed_request_is_400_saying_why(body, says):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    response = client.post("/graphql/", body, content_type="application/json")
    assert response.status_code == 400
    assert says in json.dumps(response.json())


def test_variables_sent_as_json_text_are_read_as_strictly_as_a_body(demo):
    # graphene-django reads them with json.loads: a duplicate key slipped through (an incident was created
    # from one), a lone surrogate or deep nesting was a 500.
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['deployer']}")
    create = "mutation($input: IncidentCreateInput!) { incidentCreate(input: $input) { errors { message } } }"
    duplicated = '{"input": {"serviceId": "svc-demo", "severity": "low", "link": "https://x.example", "link": "y"}}'
    cases = [
        (duplicated, "variables: input.link: appears more than once in the object; each key may appear once."),
        (
            json.dumps({"input": {"title": "J\ud800"}}),
            "variables: input.title: contains a lone surrogate; text must be valid Unicode.",
        ),
        ("[" * 300 + "]" * 300, "variables: JSON nesting deeper than 32 levels."),
    ]
    before = Incident.objects.count()
    for variables, says in cases:
        for response in (
            client.post("/graphql/", json.dumps({"query": create, "variables": variables}), "application/json"),
            client.get(
                "/graphql/",
                {
                    "query": "query($s: IncidentSeverity) { incidents(severity: $s) { edges { node { id } } } }",
                    "variables": variables,
                },
            ),
        ):
            assert response.status_code == 400, response.content
            assert response.json()["errors"] == [{"message": says, "extensions": {"code": "BAD_REQUEST"}}]
    assert Incident.objects.count() == before


def test_a_variable_beyond_64_bits_is_refused_as_an_int_not_a_500(graphql):
    # The services index's cache key (orjson) cannot hold it: the answer is not kept, and GraphQL refuses it.
    document = "query($n: Int) { servicesIndex(first: $n) { edges { node { id } } } }"
    response = graphql("viewer").post(document, n=10**30)
    assert response.status_code == 400
    assert "Int cannot represent non 32-bit signed integer value" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("send", "status", "error"),
    [
        (
            lambda c: c.post("/graphql/", "{", content_type="text/plain"),
            415,
            {
                "message": "send the operation as application/json or application/graphql.",
                "code": "UNSUPPORTED_MEDIA_TYPE",
            },
        ),
        (
            lambda c: c.post("/graphql/", json.dumps({"query": ME, "variables": [1]}), content_type="application/json"),
            400,
            {"message": "variables must be a JSON object.", "code": "BAD_REQUEST"},
        ),
        (
            lambda c: c.get("/graphql/", {"query": "mutation { x }"}, HTTP_ACCEPT="application/json"),
            405,
            {"message": "Can only perform a mutation operation from a POST request.", "code": "METHOD_NOT_ALLOWED"},
        ),
    ],
    ids=["415", "400", "405"],
)
def test_a_refused_request_says_why_as_a_graphql_error(send, status, error):
    # Not the refusal's whole JSON quoted as a message, its code lost (graphene-django's dispatch re-encodes it).
    response = send(Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}"))
    assert response.status_code == status
    assert response.json() == {"errors": [{"message": error["message"], "extensions": {"code": error["code"]}}]}


def test_a_syntax_error_is_400_with_its_location(graphql):
    response = graphql("viewer").post("{ me { actor }")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "Syntax Error" in error["message"] and error["locations"]


def test_a_session_needs_the_csrf_token_to_post(client):
    sign_in(client, "viewer")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.cookies = client.cookies
    refused = csrf_client.post("/graphql/", json.dumps({"query": ME}), content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["message"].startswith("CSRF failed")
    page = csrf_client.get("/graphql/", HTTP_ACCEPT="text/html")  # sets the csrftoken cookie
    token = page.cookies.get("csrftoken") or csrf_client.cookies["csrftoken"]
    accepted = csrf_client.post(
        "/graphql/", json.dumps({"query": ME}), content_type="application/json", HTTP_X_CSRFTOKEN=token.value
    )
    assert accepted.status_code == 200 and accepted.json()["data"]["me"]["actor"] == "dev-viewer"


def test_a_bearer_token_is_answered_without_a_csrf_cookie_and_a_session_with_one(client):
    """A script has no use for the cookie (and making its secret costs every request); GraphiQL needs it."""
    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    answer = bearer.post("/graphql/", json.dumps({"query": ME}), content_type="application/json")
    assert answer.status_code == 200 and "csrftoken" not in answer.cookies
    sign_in(client, "viewer")
    page = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and "csrftoken" in page.cookies


def test_a_bug_is_answered_without_its_details_and_logged(graphql, monkeypatch, caplog):
    def broken():
        raise RuntimeError("connection string postgres://user:hunter2@db")

    monkeypatch.setattr(identity_schema, "current_principal", broken)
    with caplog.at_level(logging.ERROR, logger="controlplane.graphql.view"):
        response = graphql("viewer").post(ME)
    text = response.content.decode()
    assert "hunter2" not in text and "RuntimeError" not in text
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert any("hunter2" in (record.exc_text or "") or record.exc_info for record in caplog.records)


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("{ me { actor nonexistent } }", "Cannot query field 'nonexistent' on type 'Me'."),
        ("{ me }", "Field 'me' of type 'Me!' must have a selection of subfields. Did you mean 'me { ... }'?"),
        ('{ service(id: 1, id: "x") { id } }', "There can be only one argument named 'id'."),
        ("query($n: Int) { services(first: $m) { edges { node { id } } } }", "Variable '$m' is not defined."),
    ],
)
def test_graphql_s_own_rules_are_checked(graphql, document, says):
    response = graphql("viewer").post(document)
    assert response.status_code == 400
    assert says in [error["message"] for error in response.json()["errors"]]


def test_large_documents_are_neither_kept_nor_parsed_before_the_size_limit(viewer, monkeypatch, settings):
    # A parsed document of 90 kB takes about 11 MB: 256 of them kept would be 3 GB of a process's memory.
    import graphql

    from controlplane.graphql import view

    parsed = []
    monkeypatch.setattr(view, "parse", lambda text: parsed.append(len(text)) or graphql.parse(text))
    wide = "{ me { " + " ".join(f"a{i}: actor" for i in range(7_000)) + " } }"
    for _ in range(2):
        assert viewer(wide)["me"]["a6999"] == "dev-viewer"
    too_large = "{ servicesIndex { edges { cursor } } }" + " " * settings.GRAPHQL_MAX_DOCUMENT_BYTES
    assert viewer.post(too_large).status_code == 413
    assert parsed == [len(wide)] * 2  # parsed for each request, never kept; the one too large never parsed
