"""`servicesIndex` is answered by projecting the index's entries onto the document (controlplane/graphql/plain.py),
not field by field: the answer is, byte for byte, graphql-core's own. Checked through the view on whole
documents (aliases, fragments, variables and directives, __typename, pagination, refusals), and on values the
projection must leave to graphql-core (nulls where the type forbids them, values a scalar converts or refuses,
exceptions, Undefined, functions, iterables that are not lists, dicts that are not the answer as they are)."""

import datetime
import json
from collections import OrderedDict
from types import SimpleNamespace

import graphene
import orjson
import pytest
import time_machine
from graphql import ExecutionContext, Undefined, execute, parse

from controlplane.graphql.plain import Plain, PlainExecutionContext, Rendered, check
from controlplane.graphql.schema import schema
from controlplane.graphql.types import DateTime
from controlplane.graphql.view import GraphQLView
from overview.models import DeploymentState, ServiceState
from releases.models import ReleaseStatus
from releases.schema import ReleaseStatusEnum
from services.models import Environment, Service
from tests.conftest import loaded_once
from tests.graphql.test_query_counts import grow

pytestmark = pytest.mark.django_db


def services() -> None:
    """The demo and four services with releases in every status and incidents, plus one with no release, no
    incident and no audit event (nulls in the entry), and an archived one."""
    grow(4)
    for pk, archived in (("svc-bare", None), ("svc-gone", datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))):
        service = Service(
            id=pk,
            name=pk,
            repo=f"github.com/acme/{pk}",
            deployment_adapters=[],
            created_at=datetime.datetime.now(datetime.UTC),
        )
        Service.objects.bulk_create([service])
        service.environments.set(Environment.objects.filter(name__in=["dev", "prod"]))
        Service.objects.filter(pk=pk).update(archived_at=archived)


data = loaded_once("data", services)

EVERY_FIELD = """query Index($first: Int, $after: String) {
  servicesIndex(first: $first, after: $after) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node {
        id name repo adapters { deployments }
        environments {
          id name
          latestRelease { id version sha status createdAt activatedAt }
          currentRelease { id version sha status createdAt activatedAt }
        }
        incidents { open { low medium high critical } highestOpenSeverity }
        auditTail { seq ts action }
      }
    }
  }
}"""

ALIASED = """{
  first: servicesIndex(first: 3) {
    info: pageInfo { more: hasNextPage end: endCursor }
    edges {
      node {
        key: id id label: name
        envs: environments { name id runs: currentRelease { v: version status s: status } }
        incidents { counts: open { critical high } worst: highestOpenSeverity }
      }
    }
  }
  demo: servicesIndex(q: "demo") { edges { node { id environments { name } } } }
}"""

FRAGMENTS = """query Fragments($withReleases: Boolean!, $bare: Boolean = false) {
  servicesIndex(first: 10) {
    __typename
    ...Page
    edges { __typename node { ...Entry ... on ServicesIndexEntry { repo } } }
  }
}
fragment Page on ServicesIndexEntryConnection { pageInfo { __typename endCursor } edges { cursor } }
fragment Entry on ServicesIndexEntry {
  __typename id
  environments {
    __typename name
    latestRelease @include(if: $withReleases) { ...Release }
    currentRelease @skip(if: $bare) { ...Release createdAt }
    ... @include(if: $bare) { id }
  }
  auditTail { __typename action }
  incidents { __typename open { __typename low } }
  adapters { __typename deployments }
}
fragment Release on IndexRelease { __typename id status activatedAt }"""

MERGED = """{
  servicesIndex(first: 5) {
    edges { node { id environments { id } } }
    edges { node { name environments { name latestRelease { id } } environments { latestRelease { sha } } } }
  }
}"""

SKIPPED = """query($no: Boolean = true) {
  servicesIndex(first: 2) { edges { node { id @skip(if: $no) incidents @skip(if: $no) { highestOpenSeverity } } } }
}"""

# What REST's index shows of an entry, in REST's order: answered with the entries as the database wrote them.
AS_REST_SHOWS = """{
  servicesIndex(first: 10) {
    edges {
      node {
        id name repo adapters { deployments }
        environments {
          id name
          latestRelease { id version sha status createdAt }
          currentRelease { id version sha status activatedAt }
        }
        incidents { open { low medium high critical } highestOpenSeverity }
        auditTail { seq ts action }
      }
    }
  }
}"""
MIXED = """{ me { actor } servicesIndex(first: 2, archived: "all") { edges { node { id auditTail { seq } } } } }"""


def _ids(body) -> list[str]:
    return [edge["node"]["id"] for edge in body["data"]["servicesIndex"]["edges"]]


def _every_field(index) -> bool:
    entries = {edge["node"]["id"]: edge["node"] for edge in index["edges"]}
    bare, busy = entries["svc-bare"], entries["svc-001"]
    return (
        list(entries) == ["svc-demo", "svc-001", "svc-002", "svc-003", "svc-bare"]
        and [env["latestRelease"] for env in bare["environments"]] == [None, None]
        and bare["auditTail"] is None
        and bare["incidents"]
        == {"open": {"low": 0, "medium": 0, "high": 0, "critical": 0}, "highestOpenSeverity": None}
        and {env["latestRelease"]["status"] for env in busy["environments"]} == {"Draft", "Promoting", "Active"}
        and busy["incidents"]["highestOpenSeverity"] == "critical"
    )


def _after_the_first_page(client) -> dict:
    page = client(EVERY_FIELD, first=2)["servicesIndex"]
    return {"first": 2, "after": page["pageInfo"]["endCursor"]}


def _after_a_release_cursor(client) -> dict:
    cursor = client("{ releases(first: 1) { pageInfo { endCursor } } }")["releases"]["pageInfo"]["endCursor"]
    return {"after": cursor}


# name: (document, variables or a function of the client giving them, what the answer must show)
CASES = {
    "every field": (EVERY_FIELD, {}, lambda body: _every_field(body["data"]["servicesIndex"])),
    "a page after the first": (EVERY_FIELD, _after_the_first_page, lambda body: _ids(body) == ["svc-002", "svc-003"]),
    "aliases, and two index fields": (ALIASED, {}, lambda body: body["data"]["demo"]["edges"][0]["node"]["id"]),
    "fragments, directives, __typename": (
        FRAGMENTS,
        {"withReleases": True},
        lambda body: '"__typename":"IndexRelease"' in json.dumps(body, separators=(",", ":")),
    ),
    "directives the other way": (FRAGMENTS, {"withReleases": False, "bare": True}, lambda body: "data" in body),
    "merged selections": (MERGED, {}, lambda body: "sha" in json.dumps(body)),
    "REST's fields in REST's order": (AS_REST_SHOWS, {}, lambda body: len(_ids(body)) == 5),
    "REST's fields in another order": (
        AS_REST_SHOWS.replace("id name repo", "name id repo"),
        {},
        lambda body: list(body["data"]["servicesIndex"]["edges"][0]["node"])[:2] == ["name", "id"],
    ),
    "every field skipped": (SKIPPED, {}, lambda body: body["data"]["servicesIndex"]["edges"][0]["node"] == {}),
    "with another root field": (MIXED, {}, lambda body: body["data"]["me"]["actor"]),
    "nothing found": (EVERY_FIELD.replace("after: $after", 'after: $after, q: "nothing"'), {}, lambda body: True),
    "a forged cursor": (EVERY_FIELD, {"after": "forged"}, lambda body: body["errors"][0]["path"]),
    "another list's cursor": (EVERY_FIELD, _after_a_release_cursor, lambda body: body["data"] is None),
    "first out of range": (EVERY_FIELD, {"first": 0}, lambda body: "first" in body["errors"][0]["message"]),
    "a filter refused": (ALIASED.replace('q: "demo"', 'archived: "maybe"'), {}, lambda body: body["errors"]),
    "a variable of the wrong type": (EVERY_FIELD, {"first": "ten"}, lambda body: body["errors"]),
}


@pytest.mark.parametrize("name", CASES)
def test_the_projection_answers_as_graphql_core(name, viewer, settings, monkeypatch):
    settings.INDEX_CACHE = False  # both answers computed
    document, variables, shows = CASES[name]
    given = variables(viewer) if callable(variables) else variables
    with time_machine.travel(datetime.datetime.now(datetime.UTC), tick=False):  # a cursor is signed with the time
        projected = viewer.post(document, **given)
        monkeypatch.setattr(GraphQLView, "execution_context_class", ExecutionContext)
        resolved = viewer.post(document, **given)
    assert (projected.status_code, projected.content) == (resolved.status_code, resolved.content)
    assert shows(projected.json()), projected.json()


def test_rests_fields_are_answered_with_the_entries_the_database_wrote(viewer, settings, monkeypatch):
    settings.INDEX_CACHE = False
    # Spliced as written: not one entry read back into values.
    monkeypatch.setattr(Rendered, "values", property(lambda self: pytest.fail("an entry was read back")))
    nodes = [edge["node"] for edge in viewer.post(AS_REST_SHOWS).json()["data"]["servicesIndex"]["edges"]]
    assert nodes == viewer.client.get("/api/services/index/?pageSize=10").json()["results"]
    latest = [env["latestRelease"] for node in nodes for env in node["environments"] if env["latestRelease"]]
    assert {release["status"] for release in latest} == {"Draft", "Promoting", "Active"}


@pytest.mark.parametrize(
    "refused",
    [
        lambda: DeploymentState.objects.filter(latest__isnull=False).update(latest_status="Unknown"),
        lambda: ServiceState.objects.update(highest_open_severity="dire"),
        lambda: Service.objects.filter(pk="svc-001").update(deployment_adapters={"not": "a list"}),
    ],
    ids=["a status", "a severity", "adapters"],
)
def test_a_written_entry_with_a_value_its_type_refuses_is_answered_as_graphql_core_answers(
    refused, viewer, settings, monkeypatch
):
    settings.INDEX_CACHE = False
    refused()
    projected = viewer.post(AS_REST_SHOWS)
    monkeypatch.setattr(GraphQLView, "execution_context_class", ExecutionContext)
    resolved = viewer.post(AS_REST_SHOWS)
    assert projected.content == resolved.content
    assert projected.json()["errors"]


def test_the_cached_answer_is_the_projected_one(viewer, settings):
    settings.INDEX_CACHE = True
    computed, cached = viewer.post(FRAGMENTS, withReleases=True), viewer.post(FRAGMENTS, withReleases=True)
    settings.INDEX_CACHE = False
    assert computed.content == cached.content == viewer.post(FRAGMENTS, withReleases=True).content


class Counting(PlainExecutionContext):
    """The fields graphql-core resolves one by one."""

    resolved: list = []

    def execute_field(self, parent_type, source, field_nodes, path):
        Counting.resolved.append(f"{parent_type.name}.{field_nodes[0].name.value}")
        return super().execute_field(parent_type, source, field_nodes, path)


def test_only_the_root_field_is_resolved(viewer, settings, monkeypatch):
    """The page's 2,000-odd fields come from the entries REST renders, not from a resolver each."""
    settings.INDEX_CACHE = False
    monkeypatch.setattr(GraphQLView, "execution_context_class", Counting)
    monkeypatch.setattr(Counting, "resolved", [])
    viewer(EVERY_FIELD)
    assert Counting.resolved == ["Query.servicesIndex"]
    viewer(MIXED)
    assert Counting.resolved[1:] == ["Query.me", "Me.actor", "Query.servicesIndex"]


def test_every_type_marked_plain_only_reads_its_values():
    """A resolver added to a Plain type would quietly send its answers back to field-by-field completion."""
    marked = [t for t in schema.graphql_schema.type_map.values() if PlainExecutionContext._is_plain(t)]
    for graphql_type in marked:
        check(graphql_type)
    names = {t.name for t in marked}
    assert {"ServicesIndexEntryConnection", "ServicesIndexEntryEdge", "PageInfo", "IndexRelease", "Adapters"} <= names
    assert not names & {"Service", "ServiceConnection", "ServiceEdge", "Release", "Query"}


def test_a_scalar_that_says_so_gives_strings_back_as_they_are():
    """The projection does not call such a scalar's serialize for a string (the index's 350 times a page)."""
    types = schema.graphql_schema.type_map.values()
    said = [t for t in types if getattr(getattr(t, "graphene_type", None), "strings_as_they_are", False)]
    assert [t.graphene_type for t in said] == [DateTime]
    for text in ("2026-01-02T03:04:05Z", "", "not a time"):
        assert all(t.serialize(text) is text for t in said)


# --- values the projection leaves to graphql-core: the same data and the same errors ---


class Leaf(Plain):
    text = graphene.String()
    required_text = graphene.String(required=True)
    number = graphene.Int()
    flag = graphene.Boolean()
    ident = graphene.ID()
    when = DateTime()
    status = graphene.Field(ReleaseStatusEnum)
    tags = graphene.List(graphene.NonNull(graphene.String))
    renamed = graphene.String(source="otherKey")
    child = graphene.Field(lambda: Leaf)
    children = graphene.List(lambda: Leaf)
    required_children = graphene.List(graphene.NonNull(lambda: Leaf), required=True)


class Root(graphene.ObjectType):
    value = graphene.Field(Leaf)
    values = graphene.List(Leaf)

    @staticmethod
    def resolve_value(root, info):
        return info.context["value"]

    @staticmethod
    def resolve_values(root, info):
        return info.context["values"]


LEAVES = parse("""{
  value { ...All child { ...All child { text } } children { text number } requiredChildren { ident } }
  values { ...All also: text __typename }
}
fragment All on Leaf { text requiredText number flag ident when status tags renamed __typename }""")
# Fields read under their own names, no __typename: a dict with exactly these keys, in this order, is its own answer.
AS_READ = parse("{ value { text number child { text number } } values { text number } }")
# Objects of which nothing is asked: still null, or an error, where graphql-core says so.
NOTHING = parse("{ value { child { text @skip(if: true) } children { number @include(if: false) } } }")

FINE = {"text": "a", "required_text": "b", "number": 7, "flag": True, "ident": "x", "when": "2026-01-01T00:00:00Z"}
FINE |= {"status": "Active", "tags": ["t"], "otherKey": "o", "child": None, "children": [], "required_children": []}


class Key(str):
    """A dict key that compares equal to a field's name, but that the response's encoder (orjson) refuses."""


def _function():
    return "called"


ODD = {
    "every leaf as it is": {},
    "a number as text": {"text": 5},
    "a boolean as text": {"text": True},
    "null in a non-null field": {"required_text": None},
    "a number beyond 32 bits": {"number": 2**31},
    "a boolean as a number": {"number": True},
    "a float as a number": {"number": 3.0},
    "text as a number": {"number": "7"},
    "a number as a flag": {"flag": 1},
    "a number as an id": {"ident": 42},
    "a datetime": {"when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)},
    "an unknown status": {"status": "Nope"},
    "a status as the domain's choice": {"status": ReleaseStatus.ACTIVE},
    "a tuple": {"tags": ("a", "b")},
    "a generator": lambda: {"tags": (t for t in ("a", "b"))},
    "null in a list of non-null": {"tags": ["a", None]},
    "text as a list": {"tags": "ab"},
    "Undefined": {"text": Undefined},
    "an exception": {"number": ValueError("boom")},
    "a function through source": {"otherKey": _function},
    "a function through a key": {"text": _function},
    "a missing key": {"__delete__": "text"},
    "extra keys, another order": {"__reorder__": True, "extra": 1},
    "only what is asked": {"__only__": ("text", "number")},
    "only what is asked, in another order": {"__only__": ("number", "text")},
    "only what is asked, under keys of a str subclass": {"__only__": ("text", "number"), "__keys__": Key},
    "a child of only what is asked": {"child": {"text": "c", "number": 1}},
    "a child of what is asked and more": {"child": {"text": "c", "number": 1, "flag": False}},
    "an object with attributes": {"child": SimpleNamespace(**FINE)},
    "a dict of another class": {"child": OrderedDict(FINE)},
    "a child with a null non-null field": {"child": {**FINE, "required_text": None}},
    "children with a null": {"children": [FINE, None, FINE]},
    "a null among required children": {"required_children": [FINE, None]},
    "required children as null": {"required_children": None},
    "an exception as a child": {"child": RuntimeError("gone")},
    "a number as a child": {"child": 5},
}


def _value(changes) -> dict:
    value = {**FINE, **(changes() if callable(changes) else changes)}
    if "__delete__" in value:
        del value[value.pop("__delete__")]
    if value.pop("__reorder__", False):
        value = dict(reversed(value.items()))
    key = value.pop("__keys__", str)
    if only := value.pop("__only__", None):
        value = {key(name): value[name] for name in only}
    return value


@pytest.mark.parametrize("document", [LEAVES, AS_READ, NOTHING], ids=["every field", "fields as read", "nothing"])
@pytest.mark.parametrize("name", ODD)
def test_a_value_left_to_graphql_core_is_answered_as_it_answers(name, document):
    leaves = graphene.Schema(query=Root).graphql_schema
    answers = []
    for context_class in (PlainExecutionContext, ExecutionContext):
        context = {"value": _value(ODD[name]), "values": [FINE, _value(ODD[name]), None]}  # generators run once
        answers.append(execute(leaves, document, context_value=context, execution_context_class=context_class))
    projected, resolved = answers
    assert projected.formatted == resolved.formatted
    assert orjson.dumps(projected.formatted) == orjson.dumps(resolved.formatted)  # as the view encodes them


def test_a_middleware_still_sees_every_field():
    """graphene-django's debug middleware (DEBUG on, when settings ask for it) wraps every resolver: no projection."""

    def shouting(next_, root, info, **arguments):
        value = next_(root, info, **arguments)
        return value.upper() if isinstance(value, str) else value

    leaves = graphene.Schema(query=Root).graphql_schema
    context = {"value": FINE, "values": [FINE]}
    answers = [
        execute(leaves, LEAVES, context_value=context, middleware=[shouting], execution_context_class=context_class)
        for context_class in (PlainExecutionContext, ExecutionContext)
    ]
    assert answers[0].formatted == answers[1].formatted
    assert answers[0].data["value"]["text"] == "A"


def test_a_plan_kept_across_requests_is_kept_for_its_variables(viewer, settings):
    # Plans are kept per document and variables (controlplane.graphql.plain._SHARED_PLANS): the same document
    # with other variables is planned for them.
    settings.INDEX_CACHE = False
    shown = lambda no: viewer.post(SKIPPED, no=no).json()["data"]["servicesIndex"]["edges"][0]["node"]  # noqa: E731
    assert shown(False).keys() == {"id", "incidents"}
    assert shown(True) == {}
    assert shown(False).keys() == {"id", "incidents"}
