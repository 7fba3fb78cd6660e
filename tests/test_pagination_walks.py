"""Every list walked through every door of the one pagination (controlplane.keyset), forwards and backwards,
over data whose first ordering column ties (services of one name, releases, runs and incidents of one time,
times with and without microseconds, written at another offset than UTC): each row comes exactly once, in the
list's order, whatever the page size and wherever a walk turns round. On SQLite and PostgreSQL alike
(DATABASE_URL)."""

import datetime
import re
from html import unescape
from urllib.parse import urlsplit

import pytest
import time_machine

from audit import views as audit_views
from audit.models import AuditEvent
from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from controlplane.keyset import Keyset
from incidents import views as incident_views
from incidents.models import Incident
from overview import views as overview_views
from releases import workflows
from releases.models import Release, WorkflowRun
from services.models import ChangeWindow, Environment, Freeze, Service
from tests.api.conftest import Api
from tests.conftest import built_once, sign_in
from tests.graphql.conftest import GraphQL

pytestmark = pytest.mark.django_db

T = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
# One instant written in UTC and at +02:00, one a microsecond later, one a second earlier.
TIMES = [
    T,
    T.astimezone(datetime.timezone(datetime.timedelta(hours=2))),
    T + datetime.timedelta(microseconds=1),
    T - datetime.timedelta(seconds=1),
]
CAROL = Principal(actor="carol@example.com", role=Role.DEPLOYER, auth_method="oidc")
SIZES = (1, 2, 3)


def build_tied():
    """Seven services, four named alike; nine releases and nine incidents over four times (three equal);
    five runs started at one instant; five environments, each linked to every service; six freezes starting at
    those four times, and five change windows."""
    with time_machine.travel(T, tick=False):
        envs = [Environment(id=f"env-w{n}", name=name) for n, name in enumerate(["wz", "wa", "w-b", "wb", "w0"])]
        for env in envs:
            env.save()
        services = []
        for n, name in enumerate(["Same", "Same", "Same", "Other", "other", "Zed", "Same"]):
            service = Service(id=f"svc-w{n}", name=name, repo=f"github.com/acme/w{n}", deployment_adapters=["k8s"])
            service.save()
            service.environments.set(envs)
            services.append(service)
        for n in range(9):
            service, env, started = services[n % 2], envs[n % len(envs)], TIMES[n % len(TIMES)]
            Release(
                id=f"rel-w{n}", service=service, environment=env, sha="abcdef1", version=f"1.{n}", created_at=started
            ).save()
            Incident(
                id=f"inc-w{n}",
                service=service,
                severity="low",
                title=f"w{n}",
                link=f"https://pd.example.com/{n}",
                started_at=started,
            ).save()
        with acting_as(CAROL):
            for n in range(5):  # each its own (service, environment): all five roll out at once
                workflows.deploy(Release.objects.get(pk=f"rel-w{n}"))
        for n in range(6):
            starts = TIMES[n % len(TIMES)]
            ends = starts + datetime.timedelta(days=1)
            Freeze(id=f"frz-w{n}", title=f"w{n}", starts_at=starts, ends_at=ends, env_ids=["env-w0"]).save()
        for n in range(5):
            name, day = f"w{4 - n}", n + 1  # named in the other order than their ids
            ChangeWindow(id=f"cw-w{n}", name=name, timezone="UTC", days=[day], start="09:00", end="17:00").save()
    assert WorkflowRun.objects.filter(started_at=T).count() == 5
    assert Release.objects.filter(service_id="svc-w0", created_at=T).count() >= 3
    assert Incident.objects.filter(service_id="svc-w0", started_at=T).count() >= 3


tied = built_once("tied", build_tied)  # once for the module: every walk only reads


# --- REST: next and previous ---

REST = [
    ("/api/services/", "id"),
    ("/api/services/index/", "id"),
    ("/api/environments/", "id"),
    ("/api/releases/", "id"),
    ("/api/workflow-runs/", "id"),
    ("/api/incidents/", "id"),
    ("/api/audit-events/", "seq"),
    ("/api/change-windows/", "id"),
    ("/api/freezes/", "id"),
]


def _keys(page: dict, key: str) -> list:
    return [item[key] for item in page["results"]]


def _get(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()


def _forwards(client, page: dict, key: str) -> tuple[list, dict]:
    """The keys from `page` to the end, following `next`; and the last page."""
    keys = _keys(page, key)
    while page["next"]:
        page = _get(client, page["next"])
        assert page["results"], "a next link to an empty page"
        keys += _keys(page, key)
        assert len(keys) < 1000, "the walk does not end"
    return keys, page


def _backwards(client, page: dict, key: str) -> tuple[list, dict]:
    """The keys from the start to `page`'s end, following `previous`; and the first page."""
    keys = _keys(page, key)
    while page["previous"]:
        page = _get(client, page["previous"])
        assert page["results"], "a previous link to an empty page"
        keys = _keys(page, key) + keys
        assert len(keys) < 1000, "the walk does not end"
    return keys, page


@pytest.mark.parametrize(("url", "key"), REST)
def test_every_rest_list_walks_both_ways_with_every_row_once_in_order(tied, url, key):
    viewer = Api("viewer").client
    everything = _keys(_get(viewer, f"{url}?pageSize=500"), key)
    assert len(everything) == len(set(everything)) >= 5
    for size in SIZES:
        first = _get(viewer, f"{url}?pageSize={size}")
        assert first["previous"] is None
        forwards, last = _forwards(viewer, first, key)
        assert forwards == everything, size
        backwards, start = _backwards(viewer, last, key)
        assert backwards == everything, size
        assert _keys(start, key) == _keys(first, key)
        # From the end (tail=true) back to the start, and forwards again from there.
        tail = _get(viewer, f"{url}?pageSize={size}&tail=true")
        assert tail["next"] is None
        assert _keys(tail, key) == everything[-size:]
        backwards, start = _backwards(viewer, tail, key)
        assert backwards == everything, size
        forwards, _ = _forwards(viewer, start, key)
        assert forwards == everything, size


@pytest.mark.parametrize(("url", "key"), REST)
def test_turning_round_anywhere_gives_the_page_turned_from(tied, url, key):
    viewer = Api("viewer").client
    page = _get(viewer, f"{url}?pageSize=2")
    while page["next"]:
        following = _get(viewer, page["next"])
        assert _keys(_get(viewer, following["previous"]), key) == _keys(page, key)
        page = following


# --- GraphQL: first and after ---

GRAPHQL = [  # (root field, key, REST's list in the same order)
    ("services", "id", "/api/services/"),
    ("servicesIndex", "id", "/api/services/index/"),
    ("environments", "id", "/api/environments/"),
    ("releases", "id", "/api/releases/"),
    ("workflowRuns", "id", "/api/workflow-runs/"),
    ("incidents", "id", "/api/incidents/"),
    ("auditEvents", "seq", "/api/audit-events/"),
    ("changeWindows", "id", "/api/change-windows/"),
    ("freezes", "id", "/api/freezes/"),
]
NESTED = [  # (the parent, its connection)
    ('service(id: "svc-w0")', "releases"),
    ('service(id: "svc-w0")', "incidents"),
    ('service(id: "svc-w0")', "auditEvents"),
    ('environment(id: "env-w0")', "services"),
]


def _graphql_walk(fetch, key: str, size: int) -> list:
    keys, after = [], None
    while True:
        connection = fetch(size, after)
        keys += [edge["node"][key] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return keys
        after = connection["pageInfo"]["endCursor"]
        assert len(keys) < 1000, "the walk does not end"


@pytest.mark.parametrize(("root", "key", "rest"), GRAPHQL)
def test_every_graphql_list_walks_with_every_row_once_in_order(tied, root, key, rest):
    viewer = GraphQL("viewer")
    document = "query ($first: Int, $after: String) { %s(first: $first, after: $after) {" % root  # noqa: UP031
    document += " edges { node { %s } } pageInfo { hasNextPage endCursor } } }" % key  # noqa: UP031
    everything = [edge["node"][key] for edge in viewer(document, first=500)[root]["edges"]]
    assert len(everything) == len(set(everything)) >= 5
    assert everything == _keys(_get(Api("viewer").client, f"{rest}?pageSize=500"), key)
    for size in SIZES:
        walked = _graphql_walk(lambda first, after: viewer(document, first=first, after=after)[root], key, size)
        assert walked == everything, size


@pytest.mark.parametrize(("parent", "field"), NESTED)
def test_a_nested_connection_walks_with_every_row_once_in_order(tied, parent, field):
    viewer = GraphQL("viewer")
    key, root = ("seq" if field == "auditEvents" else "id"), parent.split("(")[0]
    document = "query ($first: Int, $after: String) { %s { %s(first: $first, after: $after) {" % (parent, field)  # noqa: UP031
    document += " edges { node { %s } } pageInfo { hasNextPage endCursor } } } }" % key  # noqa: UP031
    everything = [edge["node"][key] for edge in viewer(document, first=500)[root][field]["edges"]]
    assert len(everything) == len(set(everything)) >= 4
    for size in SIZES:
        fetch = lambda first, after: viewer(document, first=first, after=after)[root][field]  # noqa: E731
        assert _graphql_walk(fetch, key, size) == everything, size


# --- the pages: Next and Previous, Older ---


def _html(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', html)
    return unescape(found.group(1)) if found else None


def _page_walk(client, url: str, pattern: str) -> tuple[list, list]:
    """The rows (`pattern`'s matches) following rel=next to the end; and then following rel=prev back."""
    forwards, html = [], _html(client, url)
    while True:
        rows = re.findall(pattern, html)
        assert rows, "a page with no rows"
        forwards += rows
        following = _link(html, "next")
        if not following:
            break
        url = f"{urlsplit(url).path}{following}" if following.startswith("?") else following
        html = _html(client, url)
        assert len(forwards) < 1000, "the walk does not end"
    backwards = rows
    while previous := _link(html, "prev"):
        url = f"{urlsplit(url).path}{previous}" if previous.startswith("?") else previous
        html = _html(client, url)
        backwards = re.findall(pattern, html) + backwards
        assert len(backwards) < 1000, "the walk does not end"
    return forwards, backwards


PAGES = [  # (url, the module and name of its page size, a row's pattern, the rows in order, has Previous)
    ("/", overview_views, "INDEX_PAGE_SIZE", r'<tr id="row-([^"]+)"', Service.objects.order_by("name", "id"), True),
    (
        "/environments/env-w0/",
        overview_views,
        "ENVIRONMENT_PAGE_SIZE",
        r'<td><a href="/services/([^/"]+)/">',
        Service.objects.filter(environments="env-w0").order_by("name", "id"),
        True,
    ),
    (
        "/incidents/?severity=low",
        incident_views,
        "PAGE_SIZE",
        r'<tr id="(inc-[^"]+)">',
        Incident.objects.filter(severity="low").order_by("-started_at", "-id"),
        False,
    ),
    ("/audit/", audit_views, "PAGE_SIZE", r'<tr data-seq="(\d+)">', AuditEvent.objects.order_by("-seq"), False),
]


@pytest.mark.parametrize(("url", "module", "name", "pattern", "rows", "back"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_walks_with_every_row_once_in_order(
    tied, client, monkeypatch, url, module, name, pattern, rows, back
):
    sign_in(client, "viewer")
    everything = [str(value) for value in rows.values_list("seq" if module is audit_views else "pk", flat=True)]
    assert len(everything) >= 5
    for size in SIZES:
        monkeypatch.setattr(module, name, size)
        forwards, backwards = _page_walk(client, url, pattern)
        assert forwards == everything, size
        if back:
            assert backwards == everything, size


# --- what a keyset orders by ---


@pytest.mark.parametrize(
    ("model", "ordering"),
    [
        (Release, ("-activated_at", "-id")),  # NULL until the release is activated
        (WorkflowRun, ("finished_at", "id")),  # NULL while the run runs
        (Release, ("superseded_by__version", "id")),  # through a relation that can be NULL
    ],
)
def test_a_column_that_can_be_null_is_refused_when_the_list_is_defined(model, ordering):
    # beyond() compares with < and >, which no NULL passes (a row holding one would be skipped, and its cursor
    # break the query), and SQLite and PostgreSQL put NULLs at opposite ends: refused before any page is read.
    with pytest.raises(ValueError, match="can be NULL"):
        Keyset(model, ordering, "test")
