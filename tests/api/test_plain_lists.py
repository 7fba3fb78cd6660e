"""A list read by a statement of its own (controlplane.plain_lists) answers exactly as the ORM does: the same rows,
the same pages, the same cursors, for every filter a plain statement takes, on SQLite and PostgreSQL alike."""

import datetime

import pytest
import time_machine

from controlplane import plain_lists
from releases.models import Release, ReleaseStatus

pytestmark = pytest.mark.django_db

T = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)

QUERIES = [
    "",
    "serviceId=svc-p0",
    "envId=env-p1&status=Active",
    "sha=ab",
    "sha=a_",  # LIKE's wildcards are literal characters of the prefix: no sha holds them
    "sha=a%25",
    "sha=AB",  # a prefix is case-sensitive, as on the ORM
    "version=1.0.%25",
    "status=Draft&isCurrent=false",
    "isCurrent=true",
    "serviceId=svc-nobody",
]


@pytest.fixture
def releases(make_environment, make_service):
    """Twelve releases of two services in two environments, four of them at one instant (a keyset's tie), with
    shas that share prefixes and versions with a `%`."""
    envs = [make_environment(id=f"env-p{n}") for n in range(2)]
    services = [make_service(id=f"svc-p{n}", environments=envs) for n in range(2)]
    for n in range(12):
        at = T + datetime.timedelta(seconds=0 if n < 4 else n, microseconds=0 if n % 3 else 7)
        with time_machine.travel(at, tick=False):
            release = Release(
                service=services[n % 2],
                environment=envs[n // 2 % 2],
                sha=("abc" if n % 3 else "abd") + f"{n:04x}",
                version="1.0.%" if n == 5 else f"1.0.{n}",
            )
            release.save()
        if n in (2, 3, 4):  # Active, and current where it activated last
            Release.objects.filter(pk=release.pk).update(
                status=ReleaseStatus.ACTIVE, activated_at=at, is_current=n != 2
            )


def walk(client, query: str, path: str = "/api/releases/") -> list[dict]:
    """Every page of the list, forwards two rows at a time, then back from the last page."""
    pages, url = [], f"{path}?pageSize=2&{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.json())
        url = pages[-1]["next"]
    url = pages[-1]["previous"]
    while url:
        pages.append(client.get(url).json())
        url = pages[-1]["previous"]
    return pages


@pytest.mark.parametrize("query", QUERIES)
def test_a_plain_statement_answers_as_the_orm(viewer, releases, monkeypatch, query):
    read = []
    monkeypatch.setattr(plain_lists.PlainQuery, "rows", _counting(plain_lists.PlainQuery.rows, read))
    with time_machine.travel(T, tick=False):  # a cursor's signature holds the time it was signed
        plain = walk(viewer.client, query)
        assert read, "the list was not read by its plain statement"
        monkeypatch.setattr(plain_lists.PlainQuery, "of", classmethod(lambda cls, *args: None))
        assert walk(viewer.client, query) == plain


@pytest.mark.parametrize("query", ["", "archived=false", "archived=true", "archived=all"])
def test_a_method_filter_with_a_plain_rule_answers_as_the_orm(viewer, admin, releases, monkeypatch, settings, query):
    settings.INDEX_CACHE = False
    path = "/api/services/index/"  # its services are a list of plain columns; `archived` is a method filter
    assert admin.delete("/api/services/svc-p1/").status_code == 204  # archived
    read = []
    monkeypatch.setattr(plain_lists.PlainQuery, "rows", _counting(plain_lists.PlainQuery.rows, read))
    with time_machine.travel(T, tick=False):
        plain = walk(viewer.client, query, path)
        assert read, "the list was not read by its plain statement"
        monkeypatch.setattr(plain_lists.PlainQuery, "of", classmethod(lambda cls, *args: None))
        assert walk(viewer.client, query, path) == plain
    shown = {s["id"] for page in plain for s in page["results"]}
    assert shown == {"": {"svc-p0"}, "archived=false": {"svc-p0"}, "archived=true": {"svc-p1"}}.get(
        query, {"svc-p0", "svc-p1"}
    )


def test_the_filters_find_what_they_name(viewer, releases):
    shas = lambda query: {r["sha"][:3] for page in walk(viewer.client, query) for r in page["results"]}  # noqa: E731
    assert shas("sha=ab") == {"abc", "abd"}
    assert shas("sha=abd") == {"abd"}
    assert shas("sha=a_") == shas("sha=a%25") == set()
    versions = [r["version"] for r in viewer.get("/api/releases/?version=1.0.%25").json()["results"]]
    assert versions == ["1.0.%"]
    current = viewer.get("/api/releases/?isCurrent=true").json()["results"]
    assert [r["isCurrent"] for r in current] == [True, True]


def test_a_bad_filter_is_refused_by_name(viewer, releases):
    response = viewer.get("/api/releases/?status=Sleeping")
    assert response.status_code == 400
    assert list(response.json()) == ["status"]


def _counting(rows, calls):
    def counted(self, *args):
        calls.append(args)
        return rows(self, *args)

    return counted


def _written_resources():
    from controlplane.api.urls import router

    return [
        (prefix, viewset)
        for prefix, viewset, _ in router.registry
        if getattr(viewset.serializer_class, "written_columns", lambda: None)() is not None
    ]


def test_some_lists_are_written_by_the_database():
    assert "releases" in [prefix for prefix, _ in _written_resources()]


@pytest.mark.parametrize("prefix", [prefix for prefix, _ in _written_resources()])
def test_a_list_written_by_the_database_is_what_its_serializer_writes(admin, releases, monkeypatch, prefix):
    # Every resource the database writes (DomainSerializer.written_columns), byte for byte as its serializer
    # writes the same rows: times, nulls, booleans, text escaped, on SQLite and PostgreSQL.
    text = '1.0 "quoted" \\ é ✓ \u2028'
    Release.objects.filter(sha__startswith="ab").update(version=text)
    with time_machine.travel(T, tick=False):
        for severity in ("low", "high"):
            incident = {"serviceId": "svc-p0", "severity": severity, "title": text, "link": "https://pd.example/1"}
            created = admin.post("/api/incidents/", incident)
            assert created.status_code == 201, created.content
        assert admin.post(f"/api/incidents/{created.json()['id']}/acknowledge/").status_code == 200
        written = admin.get(f"/api/{prefix}/?pageSize=7")
        (_, viewset), *_ = [each for each in _written_resources() if each[0] == prefix]
        monkeypatch.setattr(viewset.serializer_class, "_written_columns", None)
        serialized = admin.get(f"/api/{prefix}/?pageSize=7")
    assert written.status_code == serialized.status_code == 200
    assert written.content == serialized.content
    assert written.json()["results"]
