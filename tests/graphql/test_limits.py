"""The limits on one document (controlplane/graphql/limits.py): depth, cost, size — each refused before
anything runs, with a message naming the limit and its setting; what a dashboard asks stays well inside."""

import json

import pytest
from django.test import Client
from graphql import get_introspection_query, parse

from controlplane.graphql.limits import measure
from controlplane.graphql.schema import schema
from tests.conftest import TOKENS

pytestmark = pytest.mark.django_db

# The heaviest page a client needs: the services index at the largest page, every field.
WHOLE_INDEX = """
query Index($first: Int) {
  servicesIndex(first: $first) {
    edges { cursor node {
      id name repo adapters { deployments }
      environments { id name
        latestRelease { id version sha status createdAt }
        currentRelease { id version sha status activatedAt } }
      incidents { open { low medium high critical } highestOpenSeverity }
      auditTail { seq ts action } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def refusal(response) -> str:
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "LIMIT"
    return error["message"]


def cost(document: str, **variables) -> int:
    ast = parse(document)
    fragments = {d.name.value: d for d in ast.definitions if hasattr(d, "type_condition")}
    operation = next(d for d in ast.definitions if not hasattr(d, "type_condition"))
    return measure(schema.graphql_schema, operation, fragments, variables).cost


def test_the_whole_index_at_500_fits_with_room(viewer, settings):
    assert cost(WHOLE_INDEX, first=500) < settings.GRAPHQL_MAX_COST * 0.75
    assert viewer(WHOLE_INDEX, first=500)["servicesIndex"]["pageInfo"]["hasNextPage"] is False


def test_first_multiplies_what_is_under_it():
    small = cost("{ services(first: 10) { edges { node { id name } } } }")
    large = cost("{ services(first: 100) { edges { node { id name } } } }")
    assert (small, large) == (1 + 10 * 4, 1 + 100 * 4)
    # From a variable too, and a connection without `first` counts its default page (50).
    assert cost("query($n: Int) { services(first: $n) { edges { node { id } } } }", n=100) == 1 + 100 * 3
    assert cost("{ services { edges { node { id } } } }") == 1 + 50 * 3


def test_aliases_and_fragments_count_each_time():
    one = cost("{ a: services(first: 100) { edges { node { id } } } }")
    assert (
        cost("{ a: services(first: 100) { edges { node { id } } } b: services(first: 100) { edges { node { id } } } }")
        == 2 * one
    )
    with_fragment = "{ services(first: 100) { edges { node { ...F } } } } fragment F on Service { id name }"
    assert cost(with_fragment) == cost("{ services(first: 100) { edges { node { id name } } } }")


def test_an_aliased_flood_is_refused_naming_the_limit(viewer, settings):
    flood = (
        "{ "
        + " ".join(f"a{i}: servicesIndex(first: 500) {{ edges {{ node {{ id name repo }} }} }}" for i in range(20))
        + " }"
    )
    message = refusal(viewer.post(flood))
    assert f"more than the limit of {settings.GRAPHQL_MAX_COST} (CONTROLPLANE_GRAPHQL_MAX_COST)" in message


def test_the_cost_limit_is_a_setting(viewer, settings):
    settings.GRAPHQL_MAX_COST = 100
    document = "{ services(first: 40) { edges { node { id name } } } }"  # 1 + 40 * 4
    assert "costs 161, more than the limit of 100" in refusal(viewer.post(document))
    assert viewer("{ services(first: 20) { edges { node { id name } } } }") == {"services": {"edges": []}}


def test_depth_is_limited_and_a_setting(viewer, settings):
    # services > edges > node, then environments > services > edges > node twice, then id: 12 deep.
    hop = "environments { services(first: 2) { edges { node { "
    deep = "{ services(first: 2) { edges { node { " + hop * 2 + "id" + " } } } }" * 2 + " } } } }"
    assert "nests fields 12 deep, more than the limit of 10 (CONTROLPLANE_GRAPHQL_MAX_DEPTH)" in refusal(
        viewer.post(deep)
    )
    settings.GRAPHQL_MAX_DEPTH = 12
    assert viewer(deep) == {"services": {"edges": []}}


def test_depth_counts_through_fragments(viewer, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    document = "{ services { ...S } } fragment S on ServiceConnection { edges { node { id } } }"
    assert "nests fields 4 deep" in refusal(viewer.post(document))


def test_a_connection_inside_a_fragment_counts_its_page(viewer):
    # The probe's flood: 300 aliases of a connection written inside an inline fragment returned 15,000 nodes,
    # where the plain selection is refused. A field is what its type says, wherever it is written.
    plain = "{ auditEvents { edges { node { seq action } } } }"
    inline = "{ auditEvents { ... on AuditEventConnection { edges { node { seq action } } } } }"
    named = "{ auditEvents { ...Page } } fragment Page on AuditEventConnection { edges { node { seq action } } }"
    assert cost(plain) == cost(inline) == cost(named) == 1 + 50 * 4
    flood = "{ " + " ".join(f"a{i}: {inline[2:-2]}" for i in range(300)) + " }"
    assert "costs 60300, more than the limit" in refusal(viewer.post(flood))


GRAPHIQL_INTROSPECTION = get_introspection_query(
    descriptions=True, specified_by_url=True, directive_is_repeatable=True, input_value_deprecation=True
)


def test_introspection_costs_about_what_it_answers_and_graphiql_fits(viewer, settings):
    answer = viewer(GRAPHIQL_INTROSPECTION)

    def values(node) -> int:
        if isinstance(node, dict):
            return sum(1 + values(v) for v in node.values())
        return sum(values(v) for v in node) if isinstance(node, list) else 0

    # Its lists count the schema's average lengths: the standard query's cost is its answer's size.
    assert abs(cost(GRAPHIQL_INTROSPECTION) - values(answer)) < values(answer) * 0.05
    assert cost(GRAPHIQL_INTROSPECTION) < settings.GRAPHQL_MAX_COST / 2
    # Its type references nest eight deep: introspection does not count towards the depth.
    settings.GRAPHQL_MAX_DEPTH = 3
    assert viewer(GRAPHIQL_INTROSPECTION) == answer


def test_introspection_cannot_be_multiplied(viewer):
    # 270 aliased __schema selections in 99 kB returned 22 MB.
    aliased = "{ " + " ".join(f"s{i}: __schema {{ types {{ name fields {{ name }} }} }}" for i in range(270)) + " }"
    assert "more than the limit" in refusal(viewer.post(aliased))
    # __type(name:) counts the lists of the type it names, and aliases multiply it too.
    query_type = '__type(name: "Query") { fields { name args { name } } }'
    assert cost("{ " + query_type + " }") > 2 * len(schema.graphql_schema.query_type.fields)
    aliased = "{ " + " ".join(f"t{i}: {query_type}" for i in range(1000)) + " }"
    assert "more than the limit" in refusal(viewer.post(aliased))


def test_a_document_over_the_size_limit_is_413(settings):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    document = "{ me { actor } }" + " " * settings.GRAPHQL_MAX_DOCUMENT_BYTES
    response = client.post("/graphql/", json.dumps({"query": document}), content_type="application/json")
    assert response.status_code == 413
    assert "CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES" in response.json()["errors"][0]["message"]


def test_a_refused_document_runs_nothing(deployer, settings):
    from incidents.models import Incident

    settings.GRAPHQL_MAX_COST = 5
    mutation = """mutation { a: incidentCreate(input: {serviceId: "svc-x", severity: low, link: "https://x.example"}) {
        incident { id title severity status link startedAt } errors { field code message } } }"""
    refusal(deployer.post(mutation))
    assert not Incident.objects.exists()


def test_an_environment_s_services_count_as_a_page():
    # They are a connection (an environment may hold every service), so their default page counts.
    assert cost('{ environment(id: "env-prod") { services { edges { node { id } } } } }') == 1 + 1 + 50 * 3


def test_fragments_spread_again_and_again_are_measured_once_each(viewer, monkeypatch):
    # Each fragment spreads the next twice: 2^16 expansions of the last, in a document of 700 bytes. Measured
    # once per fragment, not once per path to it (which took seconds at 20 fragments, minutes at 25).
    from controlplane.graphql import limits

    calls = []
    walk = limits.Measuring.measure
    monkeypatch.setattr(limits.Measuring, "measure", lambda *args, **kwargs: calls.append(1) or walk(*args, **kwargs))
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(16))
    document = "{ ...F0 } " + chain + " fragment F16 on Query { me { actor } }"
    assert "costs 131072, more than the limit" in refusal(viewer.post(document))  # 2^16 x (me, actor)
    assert len(calls) < 100


@pytest.mark.parametrize(
    ("declared", "variables"),
    [("$n: Int = 500", {}), ("$n: Int", {"n": 500.0})],
    ids=["a default the client does not send", "a whole number sent as a float"],
)
def test_first_from_a_variable_counts_as_execution_reads_it(viewer, settings, declared, variables):
    # 500 services with 500 releases each, counted as if first were the default page of 50 (50 x 50 x 5 fits).
    nested = "{ edges { node { releases(first: $n) { edges { node { id sha version } } } } } }"
    response = viewer.client.post(
        "/graphql/",
        json.dumps({"query": f"query({declared}) {{ services(first: $n) {nested} }}", "variables": variables}),
        content_type="application/json",
    )
    assert "more than the limit" in refusal(response)


def test_only_the_operation_that_runs_is_measured(viewer):
    # GraphiQL sends the whole editor's document and names the operation to run: another one in it, over the
    # limit, runs nothing and refuses nothing. Without a name, or with two operations and none named, all count.
    flood = " ".join(f"a{i}: servicesIndex(first: 500) {{ edges {{ node {{ id name repo }} }} }}" for i in range(20))
    document = f"query Small {{ me {{ actor }} }} query Flood {{ {flood} }}"
    body = {"query": document, "operationName": "Small"}
    response = viewer.client.post("/graphql/", json.dumps(body), content_type="application/json")
    assert response.status_code == 200 and response.json() == {"data": {"me": {"actor": "dev-viewer"}}}
    body["operationName"] = "Flood"
    assert "operation 'Flood' costs" in refusal(
        viewer.client.post("/graphql/", json.dumps(body), content_type="application/json")
    )
    assert "operation 'Flood' costs" in refusal(viewer.post(document))
