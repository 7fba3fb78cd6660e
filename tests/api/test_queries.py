"""Every list and the services index run the same number of queries whatever the data's size."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from incidents.models import Incident
from releases import lifecycle
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.conftest import emptied_cache, measured_once

pytestmark = pytest.mark.django_db  # the test database is set up for the tests that mark they use it

URLS = [
    "/api/services/",
    "/api/services/index/",
    "/api/environments/",
    "/api/releases/",
    "/api/releases/?serviceId=svc-0",
    "/api/workflow-runs/",
    "/api/incidents/",
    "/api/audit-events/",
    "/api/releases/rel-0-0-0/timeline/",
]
MOST = 8  # no list needs more, whatever the page holds


def grow(services: int):
    """Services with two environments, releases, runs with logs, incidents, and their audit events."""
    envs = [Environment.objects.get_or_create(name=name)[0] for name in ("alpha", "beta")]
    for s in range(Service.objects.count(), services):
        service = Service(id=f"svc-{s}", name=f"svc {s}", repo=f"github.com/a/s{s}", deployment_adapters=["k8s"])
        service.save()
        service.environments.set(envs)
        for e, env in enumerate(envs):
            for r in range(2):
                release = Release(
                    id=f"rel-{s}-{e}-{r}", service=service, environment=env, sha="abcdef1", version=str(r)
                )
                release.save()
                lifecycle.begin_rollout(release)
                run = WorkflowRun(kind="Deploy", release=release, actor="bot")
                run.save()
                for n in range(3):
                    RunLogEntry(run=run, message=f"step {n}").save()
                lifecycle.end_rollout(run, succeeded=True)
        Incident(service=service, severity="high", link="https://pd.example.com/x").save()


def queries(api, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return len(captured)


def attempt(measure, *arguments):
    """`measure(*arguments)` from an empty cache, as each test starts; what went wrong instead, for its test."""
    try:
        with override_settings(**emptied_cache()):
            return measure(*arguments)
    except AssertionError as e:
        return f"{arguments[-1]}: {e}"


# Exact counts, pinned: a new query in these is a change to notice, not noise under MOST.
# The index without its cache: the page of services; their deployment rows; their service states with
# their audit tails. No count: cursor pages (controlplane.api.pagination.CursorPage) never count.
INDEX_UNCACHED = 3
INDEX_CACHED = {"miss": 1 + INDEX_UNCACHED, "hit": 1}  # the trail's head first, then the page unless cached
TIMELINE = 4  # the release; its runs and the promotions made from it; their log entries; their approvals


def pinned(viewer) -> dict:
    with override_settings(INDEX_CACHE=False):
        uncached = queries(viewer, "/api/services/index/")
    with override_settings(INDEX_CACHE=True):
        miss = queries(viewer, "/api/services/index/")
        hit = queries(viewer, "/api/services/index/")
    return {
        "index": uncached,
        "cached index": {"miss": miss, "hit": hit},
        "timeline": queries(viewer, "/api/releases/rel-0-0-0/timeline/"),
    }


def at_two_sizes() -> dict:
    """Every count, with no service, with 2 and with 12: the data grown once for the module, not once per test."""
    viewer = Api("viewer")
    with override_settings(INDEX_CACHE=False):
        empty_index = attempt(queries, viewer, "/api/services/index/")
    grow(2)
    small = {url: attempt(queries, viewer, url) for url in URLS} | {"pinned": attempt(pinned, viewer)}
    grow(12)
    events = AuditEvent.objects.count()
    large = {url: attempt(queries, viewer, url) for url in URLS} | {"pinned": attempt(pinned, viewer)}
    page = viewer.get("/api/services/index/").json()["results"]
    return {"empty index": empty_index, "small": small, "large": large, "events": events, "page": page}


counts = measured_once("counts", at_two_sizes)


@pytest.mark.parametrize("url", URLS)
def test_query_count_does_not_grow_with_the_data(counts, url):
    assert counts["events"] > 100
    small, large = counts["small"][url], counts["large"][url]
    assert isinstance(small, int) and isinstance(large, int), (small, large)
    assert large == small <= MOST, f"{url}: {small} queries with 2 services, {large} with 12"


def test_the_index_and_the_timeline_run_exactly_their_pinned_queries_at_any_size(counts):
    assert counts["empty index"] == 1  # an empty page: no deployment rows to ask for
    expected = {"index": INDEX_UNCACHED, "cached index": INDEX_CACHED, "timeline": TIMELINE}
    assert counts["small"]["pinned"] == expected
    assert counts["large"]["pinned"] == expected
    page = counts["page"]
    assert len(page) == 12 and all(len(entry["environments"]) == 2 for entry in page)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan; PostgreSQL scans a test's tiny tables")
@pytest.mark.parametrize(
    ("path", "index"),
    [
        ("/api/releases/", "release_order_idx"),
        ("/api/releases/?serviceId=svc-demo", "release_service_order_idx"),
        ("/api/workflow-runs/", "run_order_idx"),
        ("/api/incidents/", "incident_order_idx"),
    ],
)
def test_a_list_reads_its_page_in_order_from_an_index_not_every_row_sorted(demo, path, index):
    with CaptureQueriesContext(connection) as queries:
        assert Api("viewer").get(path).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {queries.captured_queries[0]['sql']}")
        plan = " / ".join(row[3] for row in cursor.fetchall())
    assert index in plan and "TEMP B-TREE" not in plan, plan
