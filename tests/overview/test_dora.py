"""DORA metrics (overview.dora, docs/metrics.md) on a history with known answers, built through the domain operations
on a frozen clock: the figures, the deployments behind each (as many as each counts), REST, GraphQL and the page
agreeing, their query counts, and what feeds them: a release's `committedAt`, an incident's `releaseId`."""

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from incidents.models import Incident
from overview import dora
from releases import rollback, runs, workflows
from releases.models import Release
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.conftest import TOKENS, built_once, sign_in

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)  # the default window: [2026-03-01T12:00Z, 2026-03-31T12:00Z)
REASON = "2.0 breaks the checkout page"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class History:
    """The clock moved by hand through a history of deployments, failures, incidents and a rollback."""

    def __init__(self, traveller):
        self.clock = traveller
        self.names: dict[str, str] = {}  # what the tests call a release or incident → its id

    def go(self, when: str) -> None:
        self.clock.move_to(at(when))

    def release(self, name: str, service: Service, env: Environment, sha: str, when: str, **fields) -> Release:
        self.go(when)
        release = Release(service=service, environment=env, sha=sha, version=name, **fields)
        release.save()
        self.names[name] = release.pk
        return release

    def deploy(self, release: Release, finished: str, succeeded: bool = True) -> None:
        run = workflows.deploy(release)
        self.go(finished)
        assert runs.finish(run, succeeded=succeeded)

    def promote(self, release: Release, env: Environment, name: str, started: str, finished: str) -> None:
        self.go(started)
        run = workflows.promote(release, env)
        self.names[name] = run.release_id
        self.go(finished)
        assert runs.finish(run, succeeded=True)

    def rollback(self, service: Service, env: Environment, name: str, started: str, finished: str) -> None:
        self.go(started)
        run = rollback.rollback(service, env, REASON)
        self.names[name] = run.release_id
        self.go(finished)
        assert runs.finish(run, succeeded=True)

    def incident(self, name: str, service: Service, when: str, **fields) -> Incident:
        self.go(when)
        incident = Incident(service=service, severity="high", link="https://pd.example.com/1", **fields)
        incident.save()
        self.names[name] = incident.pk
        return incident


def build() -> dict:
    """Two services; production environments prod-dora and prod-dora-eu, and a staging one. Times in UTC.

    A, in prod-dora:  a1 promoted from staging (committed Mar 1 21:00) Mar 3 10:10; a2 (created 10:00) Mar 5 11:10,
                      an incident at 12:00 (linked by default), rolled back Mar 5 13:10 (r1); a3 (committed 08:00)
                      fails Mar 10 09:20; a3b (same sha, no commit time) Mar 10 10:15; a4 Mar 29 00:30 (the night
                      Europe moves its clocks), an incident at 02:30 naming it: not recovered.
    B, in prod-dora:  bx Mar 1 11:59:59 (a second before the window); b0 Mar 1 12:00:00 (its first instant); b1 Mar 15
                      10:30, then promoted to prod-dora-eu Mar 16 10:05 (b1e); an incident Mar 20 (linked by default to
                      b1e, the production release activated last); b2e Mar 22 10:00 in prod-dora-eu recovers it.

    The known answers (test_the_figures_of_the_default_window): 9 deployments (0.3 a day); lead times 1800, 1800,
    3600, 3600, 4200, 8100, 86700, 133800 s (median 3900, p90 133800; 2 from commit times); 4 of 10 failed (a2, a3's
    run, b1e, a4); recoveries 7200, 3300, 518100 s (median 7200; a4 unrecovered); rework 3 of 9 (r1, a3b, b2e)."""
    with time_machine.travel(at("2026-02-20T09:00:00"), tick=False) as traveller:
        h = History(traveller)
        staging = Environment(id="env-dora-staging", name="dora-staging")
        staging.save()
        prod = Environment(id="env-dora-prod", name="prod-dora", region="us-east-1", cluster="main")
        prod.save()
        eu = Environment(id="env-dora-eu", name="prod-dora-eu", region="eu-west-1", cluster="eu")
        eu.save()
        a = Service(id="svc-dora-a", name="Checkout", repo="github.com/acme/checkout", deployment_adapters=["k8s"])
        a.save()
        a.environments.set([staging, prod])
        b = Service(id="svc-dora-b", name="Payments", repo="github.com/acme/payments", deployment_adapters=["k8s"])
        b.save()
        b.environments.set([prod, eu])

        h.incident("before", a, "2026-02-20T09:00:00")  # nothing runs in production yet: no release
        h.deploy(h.release("a0", a, prod, "a0a0a0a", "2026-02-20T10:00:00"), "2026-02-20T10:10:00")
        b0 = h.release("b0", b, prod, "b1b1b1b", "2026-03-01T11:00:00")
        h.deploy(h.release("bx", b, prod, "b0b0b0b", "2026-03-01T11:30:00"), "2026-03-01T11:59:59")
        h.deploy(b0, "2026-03-01T12:00:00")
        committed = at("2026-03-01T21:00:00")
        a1 = h.release("a1", a, staging, "a1a1a1a", "2026-03-02T09:00:00", committed_at=committed)
        h.deploy(a1, "2026-03-02T09:05:00")
        h.promote(Release.objects.get(pk=a1.pk), prod, "a1p", "2026-03-03T10:00:00", "2026-03-03T10:10:00")
        a2 = h.release("a2", a, prod, "a2a2a2a", "2026-03-05T10:00:00")
        h.go("2026-03-05T11:00:00")
        h.deploy(a2, "2026-03-05T11:10:00")
        h.incident("a2-incident", a, "2026-03-05T12:00:00")
        h.rollback(a, prod, "r1", "2026-03-05T13:00:00", "2026-03-05T13:10:00")
        a3 = h.release("a3", a, prod, "a3a3a3a", "2026-03-10T09:00:00", committed_at=at("2026-03-10T08:00:00"))
        h.deploy(a3, "2026-03-10T09:20:00", succeeded=False)
        h.deploy(h.release("a3b", a, prod, "a3a3a3a", "2026-03-10T10:00:00"), "2026-03-10T10:15:00")
        b1 = h.release("b1", b, prod, "b2b2b2b", "2026-03-15T10:00:00")
        h.deploy(b1, "2026-03-15T10:30:00")
        h.promote(Release.objects.get(pk=b1.pk), eu, "b1e", "2026-03-16T10:00:00", "2026-03-16T10:05:00")
        h.incident("b-incident", b, "2026-03-20T08:00:00")
        h.deploy(h.release("b2e", b, eu, "b3b3b3b", "2026-03-22T09:00:00"), "2026-03-22T10:00:00")
        a4 = h.release("a4", a, prod, "a4a4a4a", "2026-03-29T00:00:00")
        h.deploy(a4, "2026-03-29T00:30:00")
        h.incident("a4-incident", a, "2026-03-29T02:30:00", release=Release.objects.get(pk=a4.pk))
        return h.names


history = built_once("history", build)


def figures(**asked) -> dora.Figures:
    return dora.measure(dora.window(now=NOW, **asked))


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


# --- the figures ---

EXPECTED = {
    "deploymentFrequency": {"count": 9, "perDay": 0.3},
    "leadTimeForChanges": {
        "median": 3900,
        "p90": 133800,
        "count": 8,
        "measuredFrom": {"committedAt": 2, "releaseCreatedAt": 6},
    },
    "changeFailureRate": {"failed": 4, "total": 10, "rate": 0.4},
    "failedDeploymentRecoveryTime": {"median": 7200, "count": 3, "unrecovered": 1},
    "reworkRate": {"count": 3, "total": 9, "rate": 0.3333},
    "tier": {
        "level": "low",
        "report": "DORA 2024",
        "byMetric": {
            "deploymentFrequency": "high",
            "leadTimeForChanges": "elite",
            "changeFailureRate": "low",
            "failedDeploymentRecoveryTime": "high",
        },
    },
}


# The window straddles both DST changes of March 2026 (America's on the 8th, Europe's on the 29th): the figures are
# the same whatever the server's time zone, and a window is 30 days of 24 hours.
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_the_figures_of_the_default_window(settings, zone):
    settings.TIME_ZONE = zone
    answer = figures().as_json()
    assert {k: answer[k] for k in EXPECTED} == EXPECTED
    assert (answer["since"], answer["until"], answer["days"]) == ("2026-03-01T12:00:00Z", "2026-03-31T12:00:00Z", 30)
    assert answer["envIds"] == ["env-dora-eu", "env-dora-prod"]  # the production ones, not staging
    assert (answer["serviceId"], answer["envId"]) == (None, None)


def ids(history, found) -> list[str]:
    return [
        next(name for name, pk in history.items() if pk == d.release_id and not name.endswith("incident"))
        for d in found
    ]


def test_each_figure_drills_down_to_as_many_deployments_as_it_counts(history):
    found = figures()
    drilled = {metric: ids(history, found.drill(metric)) for metric in dora.METRICS}
    assert drilled == {
        # newest first; bx finished a second before the window, b0 at its first instant
        "deploymentFrequency": ["a4", "b2e", "b1e", "b1", "a3b", "r1", "a2", "a1p", "b0"],
        "leadTimeForChanges": ["a4", "b2e", "b1e", "b1", "a3b", "a2", "a1p", "b0"],  # not the rollback
        "changeFailureRate": ["a4", "b1e", "a3", "a2"],
        "failedDeploymentRecoveryTime": ["b1e", "a3", "a2"],
        "reworkRate": ["b2e", "a3b", "r1"],
    }
    counts = {m: found.figures[m].get("count", found.figures[m].get("failed")) for m in dora.METRICS}
    assert counts == {metric: len(names) for metric, names in drilled.items()}


def test_what_each_deployment_says_about_itself(history):
    rows = {d.release_id: d.as_json() for d in figures().drill("deploymentFrequency")}
    a2 = rows[history["a2"]]
    assert a2["failedBecause"] == ["rolledBack", "incident"]
    assert (a2["rolledBackBy"], a2["incidentIds"]) == (history["r1"], [history["a2-incident"]])
    assert (a2["recoverySeconds"], a2["recoveredAt"], a2["leadTimeSeconds"]) == (7200, "2026-03-05T13:10:00Z", 4200)
    a1p = rows[history["a1p"]]
    # promoted: its lead time runs from the commit time the promotion copied, not from the promotion
    assert (a1p["kind"], a1p["leadTimeFrom"], a1p["leadTimeSeconds"]) == ("Promote", "committedAt", 133800)
    a3b = rows[history["a3b"]]
    # no commit time of its own: its sha's (the failed a3's)
    assert (a3b["leadTimeFrom"], a3b["leadTimeSeconds"], a3b["rework"]) == ("committedAt", 8100, True)
    b1e = rows[history["b1e"]]
    # promoted: from the change's first release (b1, a day before), not from the promotion's new record
    assert (b1e["leadTimeFrom"], b1e["leadTimeSeconds"], b1e["recoverySeconds"]) == ("releaseCreatedAt", 86700, 518100)
    r1 = rows[history["r1"]]
    assert (r1["kind"], r1["leadTimeSeconds"], r1["rework"], r1["failed"]) == ("Rollback", None, True, False)
    a4 = rows[history["a4"]]
    assert (a4["finishedAt"], a4["recoveredByRunId"], a4["failedBecause"]) == (
        "2026-03-29T00:30:00Z",
        None,
        ["incident"],
    )
    failed_run = next(d for d in figures().drill("changeFailureRate") if d.release_id == history["a3"]).as_json()
    assert (failed_run["state"], failed_run["failedBecause"], failed_run["recoverySeconds"]) == (
        "Failed",
        ["runFailed"],
        3300,
    )


def test_a_window_is_half_open_and_narrowed_by_service_and_environment(history):
    assert figures(since=at("2026-03-01T11:59:59")).figures["deploymentFrequency"]["count"] == 10  # bx too
    # b0 finished at the window's end: not in it (a0 and bx are)
    assert figures(until=at("2026-03-01T12:00:00")).figures["deploymentFrequency"] == {"count": 2, "perDay": 0.0667}
    until_a4 = figures(until=at("2026-03-29T00:30:00"))  # a4 finished at the window's end: not in it
    assert until_a4.figures["deploymentFrequency"]["count"] == 9
    assert until_a4.window.since == at("2026-02-27T00:30:00")  # 30 days before until
    a = figures(service_id="svc-dora-a").figures
    assert (a["deploymentFrequency"]["count"], a["changeFailureRate"]) == (5, {"failed": 3, "total": 6, "rate": 0.5})
    eu = figures(environment_id="env-dora-eu")
    assert [d.release_id for d in eu.drill("deploymentFrequency")] == [history["b2e"], history["b1e"]]
    staging = figures(environment_id="env-dora-staging")  # asked for by id, a non-production one counts too
    assert [d.release_id for d in staging.drill("deploymentFrequency")] == [history["a1"]]


def test_a_failure_recovered_after_the_window_counts_its_recovery(history):
    # until Mar 20: b1e's recovery (Mar 22) is later, but it is the recovery of a failure in the window
    found = figures(until=at("2026-03-20T00:00:00"))
    assert found.figures["failedDeploymentRecoveryTime"] == {"median": 7200, "count": 3, "unrecovered": 0}
    assert found.figures["reworkRate"]["count"] == 2  # b2e is after the window


def test_nothing_deployed_is_no_figure_and_no_tier(history):
    empty = figures(since=at("2026-01-01T00:00:00"), until=at("2026-01-31T00:00:00")).as_json()
    assert empty["deploymentFrequency"] == {"count": 0, "perDay": 0.0}
    assert empty["leadTimeForChanges"]["median"] is None and empty["changeFailureRate"]["rate"] is None
    assert empty["tier"] == {
        "level": None,
        "report": "DORA 2024",
        "byMetric": dict.fromkeys(EXPECTED["tier"]["byMetric"]),
    }


@pytest.mark.parametrize(
    ("figure", "expected"),
    [
        ({"perDay": 1.0, "lead": 86399, "rate": 0.05, "recovery": 3599}, "elite"),
        ({"perDay": 1 / 7, "lead": 7 * 86400, "rate": 0.2, "recovery": 86399}, "high"),
        ({"perDay": 1 / 30, "lead": 30 * 86400, "rate": 0.1, "recovery": 3599}, "medium"),
        ({"perDay": 0.03, "lead": 3600, "rate": 0.0, "recovery": None}, "low"),
        ({"perDay": 5.0, "lead": 3600, "rate": 0.21, "recovery": 60}, "low"),
        ({"perDay": 5.0, "lead": None, "rate": 0.0, "recovery": None}, "elite"),  # only rollbacks, nothing failed
    ],
)
def test_the_tier_is_the_lowest_cluster_any_figure_falls_in(figure, expected):
    figures_ = {
        "deploymentFrequency": {"perDay": figure["perDay"]},
        "leadTimeForChanges": {"median": figure["lead"]},
        "changeFailureRate": {"rate": figure["rate"], "total": 1},
        "failedDeploymentRecoveryTime": {"median": figure["recovery"]},
    }
    assert dora.tier(figures_)["level"] == expected


def test_the_figures_take_the_same_few_queries_whatever_the_history(history):
    with CaptureQueriesContext(connection) as everything:
        figures()
    with CaptureQueriesContext(connection) as one_service:
        figures(service_id="svc-dora-a")
    # the environments, the runs (with their changes, rollbacks and whether an incident is linked); and the service
    assert (len(everything), len(one_service)) == (2, 3)
    with CaptureQueriesContext(connection) as drilled:
        found = figures()
        found.drill("changeFailureRate")
        found.drill("deploymentFrequency")
    assert len(drilled) == 3  # and the linked incidents' ids, once, for the deployments shown


# --- what feeds them: an incident's release, a release's commit time ---


def test_an_incident_is_linked_by_default_to_the_production_release_running_when_it_started(history):
    linked = dict(Incident.objects.filter(pk__in=history.values()).values_list("pk", "release_id"))
    assert linked[history["before"]] is None  # nothing ran in production then
    assert linked[history["a2-incident"]] == history["a2"]
    assert linked[history["b-incident"]] == history["b1e"]  # B runs in two: the one activated last
    assert linked[history["a4-incident"]] == history["a4"]


@pytest.fixture
def deployer():
    return Api("deployer")


def test_rest_creates_an_incident_with_its_default_none_or_another_release_of_its_service(history, deployer):
    body = {"serviceId": "svc-dora-a", "severity": "low", "link": "https://pd.example.com/2"}
    with time_machine.travel(at("2026-03-05T12:30:00"), tick=False):
        default = deployer.post("/api/incidents/", {**body, "startedAt": "2026-03-05T11:30:00Z"})
        none = deployer.post("/api/incidents/", {**body, "releaseId": None})
        other = deployer.post("/api/incidents/", {**body, "releaseId": history["a1p"]})
        foreign = deployer.post("/api/incidents/", {**body, "releaseId": history["b1"]})
        unknown = deployer.post("/api/incidents/", {**body, "releaseId": "rel-nope"})
    assert default.status_code == 201 and default.json()["releaseId"] == history["a2"]
    assert none.status_code == 201 and none.json()["releaseId"] is None
    assert other.status_code == 201 and other.json()["releaseId"] == history["a1p"]
    assert foreign.status_code == 400 and foreign.json() == {
        "releaseId": [
            f"release {history['b1']} is of service 'svc-dora-b', not of the incident's service 'svc-dora-a'."
        ]
    }
    assert unknown.status_code == 400 and unknown.json() == {"releaseId": ["unknown release 'rel-nope'."]}
    incident = default.json()["id"]
    relinked = deployer.patch(f"/api/incidents/{incident}/", {"releaseId": history["a1p"]})
    assert relinked.status_code == 200 and relinked.json()["releaseId"] == history["a1p"]
    unlinked = deployer.patch(f"/api/incidents/{incident}/", {"releaseId": None})
    assert unlinked.status_code == 200 and unlinked.json()["releaseId"] is None
    assert Incident.objects.get(pk=incident).release_id is None
    created, *updates = AuditEvent.objects.filter(subject_id=incident).order_by("seq")
    assert created.metadata["releaseId"] == history["a2"]
    assert [u.metadata["changes"]["releaseId"] for u in updates] == [
        [history["a2"], history["a1p"]],
        [history["a1p"], None],
    ]


def test_an_incident_from_an_integration_is_linked_by_default_too(history):
    from tests.integrations.test_inbound import am_alert, am_payload, integration, only_result

    with time_machine.travel(at("2026-03-05T12:30:00"), tick=False):
        source = integration("alertmanager", {"checkout": "svc-dora-a"})
        answer = source.alertmanager(am_payload(am_alert("firing", starts="2026-03-05T12:20:00Z")))
    assert answer.status_code == 202, answer.content
    assert Incident.objects.get(pk=only_result(answer)["incidentId"]).release_id == history["a2"]


def test_a_release_takes_its_commit_time_on_create_not_after_its_creation(history, deployer):
    body = {"serviceId": "svc-dora-a", "envId": "env-dora-prod", "sha": "c0ffee1", "version": "5.0"}
    with time_machine.travel(NOW, tick=False):
        ahead = deployer.post("/api/releases/", {**body, "committedAt": "2026-03-31T12:05:01Z"})
        naive = deployer.post("/api/releases/", {**body, "committedAt": "2026-03-31T11:00:00"})
        skewed = deployer.post("/api/releases/", {**body, "committedAt": "2026-03-31T14:04:00+02:00"})
    assert ahead.status_code == 400 and list(ahead.json()) == ["committedAt"]
    assert ahead.json()["committedAt"][0].startswith("must not be after the release's creation")
    assert naive.status_code == 400 and list(naive.json()) == ["committedAt"]
    assert skewed.status_code == 201, skewed.content  # 4 minutes ahead: a committer's clock running fast
    release = skewed.json()
    assert release["committedAt"] == "2026-03-31T12:04:00Z"
    changed = deployer.patch(f"/api/releases/{release['id']}/", {"committedAt": "2026-03-30T12:00:00Z"})
    assert changed.status_code == 400 and changed.json() == {"committedAt": ["cannot be changed once set."]}


# --- REST, GraphQL, the page ---


def rest(query: str = "", role: str = "viewer"):
    return Api(role).get(f"/api/metrics/dora/{query}")


def test_rest_answers_the_figures_with_a_link_to_each_drill_down(history, frozen):
    response = rest()
    assert response.status_code == 200, response.content
    answer = response.json()
    for metric in dora.METRICS:
        link = answer[metric].pop("drill")
        assert link == (
            "/api/metrics/dora/?since=2026-03-01T12%3A00%3A00Z&until=2026-03-31T12%3A00%3A00Z&drill=" + metric
        )
        drilled = Api("viewer").get(link).json()
        counted = answer[metric].get("count", answer[metric].get("failed"))
        assert (drilled["metric"], drilled["count"], len(drilled["deployments"])) == (metric, counted, counted)
    assert answer == figures().as_json()
    assert {k: answer[k] for k in EXPECTED} == EXPECTED


DRILLED = ["runId", "releaseId", "failedBecause", "incidentIds", "recoverySeconds"]  # the document's deployments


def test_rest_and_graphql_agree(history, frozen):
    document = """query($serviceId: ID, $since: DateTime) {
      doraMetrics(serviceId: $serviceId, since: $since) {
        serviceId envId envIds since until days
        deploymentFrequency { count perDay }
        leadTimeForChanges { median p90 count measuredFrom { committedAt releaseCreatedAt } }
        changeFailureRate { failed total rate }
        failedDeploymentRecoveryTime { median count unrecovered }
        reworkRate { count total rate }
        tier { level report byMetric { deploymentFrequency leadTimeForChanges changeFailureRate
                                       failedDeploymentRecoveryTime } }
        deployments(metric: changeFailureRate) { runId releaseId failedBecause incidentIds recoverySeconds }
      }
    }"""
    for variables in ({}, {"serviceId": "svc-dora-a", "since": "2026-03-04T00:00:00+01:00"}):
        body = {"query": document, "variables": variables}
        client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/graphql/", json.dumps(body), content_type="application/json")
        counted = len(queries)  # now: the next request starts the log afresh
        answer = response.json()
        assert "errors" not in answer, answer
        got = answer["data"]["doraMetrics"]
        query = "&".join(f"{k}={quote(v)}" for k, v in variables.items())
        expected = rest(f"?{query}").json()
        drilled = rest(f"?{query}&drill=changeFailureRate").json()["deployments"]
        for metric in dora.METRICS:
            expected[metric].pop("drill")
        assert got.pop("deployments") == [{k: d[k] for k in DRILLED} for d in drilled]
        assert got == expected
        # the figures' and the drill-down's (the linked incidents) and the service's: nothing per deployment
        assert counted == (3 if not variables else 4)


def test_rest_query_counts_do_not_grow_with_the_history(history, frozen):
    with CaptureQueriesContext(connection) as queries:
        assert rest().status_code == 200
    counted = len(queries)  # now: the next request starts the log afresh
    with CaptureQueriesContext(connection) as drilled:
        assert rest("?drill=reworkRate&serviceId=svc-dora-b").status_code == 200
    assert (counted, len(drilled)) == (2, 4)  # the drill-down: the service, and the incidents linked


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("?serviceId=svc-nope", "serviceId", "unknown service 'svc-nope'."),
        ("?envId=env-nope", "envId", "unknown environment 'env-nope'."),
        ("?since=2026-03-01", "since", "must be an RFC 3339 time with an offset"),
        ("?until=2026-03-01T00:00:00%2001:00", "until", "In a query string, write + as %2B."),
        ("?since=2026-03-31T12:00:00Z", "since", "must be before until (2026-03-31T12:00:00Z)"),
        ("?drill=mttr", "drill", '"mttr" is not a valid choice.'),
        ("?serviceid=svc-dora-a", "serviceid", "is not a parameter of the DORA metrics (it takes serviceId, envId"),
        ("?since=", "since", "is empty"),
    ],
)
def test_rest_names_the_parameter_it_refuses(history, frozen, query, field, message):
    response = rest(query)
    assert response.status_code == 400 and list(response.json()) == [field], response.content
    assert message in response.json()[field][0]


def test_graphql_refuses_arguments_as_rest_does(history, frozen):
    document = '{ doraMetrics(serviceId: "svc-nope", since: "2026-03-01") { days } }'
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    answer = client.post("/graphql/", json.dumps({"query": document}), content_type="application/json").json()
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "INVALID" and set(error["extensions"]["fields"]) == {"since"}


def test_graphql_release_and_incident_carry_commit_time_and_release(history, frozen):
    document = """query($r: ID!, $i: ID!) { release(id: $r) { committedAt } incident(id: $i) { releaseId } }"""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    variables = {"r": history["a1p"], "i": history["a2-incident"]}
    body = json.dumps({"query": document, "variables": variables})
    answer = client.post("/graphql/", body, content_type="application/json").json()
    assert answer["data"] == {
        "release": {"committedAt": "2026-03-01T21:00:00Z"},
        "incident": {"releaseId": history["a2"]},
    }


def test_graphql_mutations_write_commit_time_and_release(history, frozen):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['deployer']}")

    def send(document: str, **variables) -> dict:
        body = json.dumps({"query": document, "variables": variables})
        return client.post("/graphql/", body, content_type="application/json").json()["data"]

    created = send(
        """mutation($t: DateTime) { releaseCreate(input: {serviceId: "svc-dora-a", envId: "env-dora-prod",
             sha: "c0ffee2", version: "6.0", committedAt: $t}) {
             release { id committedAt } errors { field message } } }""",
        t="2026-03-31T13:00:00Z",
    )["releaseCreate"]
    assert created["release"] is None and [e["field"] for e in created["errors"]] == ["committedAt"]
    incident = send(
        """mutation { incidentCreate(input: {serviceId: "svc-dora-a", severity: low, link: "https://x.example.com",
             releaseId: null}) { incident { id releaseId } errors { field } } }"""
    )["incidentCreate"]["incident"]
    assert incident["releaseId"] is None
    updated = send(
        """mutation($id: ID!, $r: ID) { incidentUpdate(id: $id, input: {releaseId: $r}) {
             incident { releaseId } errors { field message } } }""",
        id=incident["id"],
        r=history["a4"],
    )["incidentUpdate"]
    assert updated == {"incident": {"releaseId": history["a4"]}, "errors": []}


def test_the_metrics_page_shows_each_figure_linking_to_its_deployments(history, frozen):
    client = sign_in(Client(), "viewer")
    page = client.get("/metrics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "DORA 2024" in html and "0.3" in html and "40%" in html
    assert 'href="/metrics/"' in html  # the navigation
    drill = "/metrics/?since=2026-03-01T12%3A00%3A00Z&amp;until=2026-03-31T12%3A00%3A00Z&amp;drill=changeFailureRate"
    assert drill in html
    drilled = client.get(drill.replace("&amp;", "&"))
    rows = drilled.content.decode().count('<tr class="deployment')
    assert drilled.status_code == 200 and rows == 4
    refused = client.get("/metrics/?since=yesterday")
    assert refused.status_code == 400 and "must be an RFC 3339 time" in refused.content.decode()
    blank = client.get("/metrics/?serviceId=&envId=&since=&until=")  # an HTML form sends its empty fields
    assert blank.status_code == 200


def test_a_service_page_has_a_row_of_its_figures(history, frozen):
    client = sign_in(Client(), "viewer")
    page = client.get("/services/svc-dora-a/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/metrics/?serviceId=svc-dora-a"' in html and "50%" in html  # 3 failed of 6


def test_the_metrics_need_a_principal(history):
    assert rest(role=None).status_code == 401
    assert Client().get("/metrics/").status_code == 302
