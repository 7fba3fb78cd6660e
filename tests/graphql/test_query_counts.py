"""GraphQL documents run the same number of SQL queries whatever the data's size: relations load in batches
across siblings (controlplane.graphql.types.batched), so a nested page costs a query per relation, not one
per object. Each document's count is pinned exactly, for the whole request as a client sees it (the bearer
token costs no query), at 3 and at 30 services."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent, append
from controlplane.identity.context import acting_as
from incidents.models import Incident
from overview import deployment_state
from releases.models import Observation, Release, RunLogEntry, WorkflowRun
from services.models import ChangeWindow, Environment, Freeze, Service

SMALL, LARGE = 3, 30

# --- data, built in bulk (valid by construction, as `manage.py seed` builds it) ---

ENVIRONMENTS = (("dev", "", ""), ("staging", "", ""), ("prod", "us-east-1", "prod-main"))


def grow(services: int) -> None:
    """Services up to `services`, each linked to dev, staging and prod, with per environment a Failed
    release, an Active one superseded by a later Active (current) one, each with its run and log entries; in
    dev a Draft on top, in staging a Promoting one with its Running run; prod's current release promoted
    from staging's (a Promote run). Per service an incident triggered, one acknowledged, one resolved; what the
    last drift check saw in staging (every other service drifted); every object's audit event. The read model is
    rebuilt from that history."""
    now = timezone.now()
    envs = []
    for name, region, cluster in ENVIRONMENTS:
        env = Environment.objects.filter(name=name).first()
        if env is None:
            env = Environment(id=f"env-{name}", name=name, region=region, cluster=cluster)
            env.save()
        envs.append(env)
    start = Service.objects.count()
    new = [
        Service(
            id=f"svc-{s:03d}",
            name=f"service {s:03d}",
            repo=f"github.com/acme/service-{s:03d}",
            deployment_adapters=["k8s", "fly"],
            created_at=now - timedelta(days=30),
        )
        for s in range(start, services)
    ]
    Service.objects.bulk_create(new)
    # Per service a change window and a freeze of staging and prod (over in January); prod's refs name the first
    # window (Mon-Fri 09:00-17:00 Europe/Berlin), ask for promotion from staging and gate critical incidents.
    ChangeWindow.objects.bulk_create(
        ChangeWindow(
            id=f"cw-{s:03d}",
            name=f"w-{s:03d}",
            timezone="Europe/Berlin",
            days=[1, 2, 3, 4, 5],
            start="09:00",
            end="17:00",
        )
        for s in range(start, services)
    )
    Freeze.objects.bulk_create(
        Freeze(
            id=f"frz-{s:03d}",
            title=f"freeze {s:03d}",
            starts_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=s),
            ends_at=datetime(2026, 1, 2, tzinfo=UTC) + timedelta(hours=s),
            env_ids=["env-staging", "env-prod"],
        )
        for s in range(start, services)
    )
    refs = ["policy:change-window:w-000", "policy:requires:env-staging", "policy:incident-gate:critical"]
    Environment.objects.filter(name="prod").update(policy_refs=refs)
    links = Service.environments.through
    links.objects.bulk_create([links(service_id=svc.id, environment_id=env.id) for svc in new for env in envs])
    events = [("service.create", "Service", svc.id, svc.id, {"name": svc.name}) for svc in new]
    releases, runs, logs, incidents, observations = [], [], [], [], []

    def release(svc, env, tag, status, created, sha):
        made = Release(
            id=f"rel-{svc.id[4:]}-{env.name}-{tag}",
            service_id=svc.id,
            environment_id=env.id,
            sha=sha,
            version=f"1.{tag}",
            status=status,
            created_at=created,
            activated_at=created + timedelta(minutes=5) if status == "Active" else None,
        )
        releases.append(made)
        events.append(("release.create", "Release", made.id, svc.id, {"version": made.version}))
        return made

    def run(made, svc, state, kind="Deploy", source=None):
        started = made.created_at + timedelta(minutes=1)
        done = state != "Running"
        made_run = WorkflowRun(
            id=f"run-{made.id[4:]}",
            kind=kind,
            release_id=made.id,
            source_release_id=source.id if source else None,
            actor="deploy-bot",
            state=state,
            started_at=started,
            finished_at=started + timedelta(minutes=4) if done else None,
        )
        runs.append(made_run)
        for n in range(4 if done else 2):
            level = "error" if state == "Failed" and n == 3 else "info"
            logs.append(
                RunLogEntry(run_id=made_run.id, ts=started + timedelta(seconds=n), level=level, message=f"step {n}")
            )
        if done:
            verb = "release.activate" if state == "Succeeded" else "release.fail"
            events.append((verb, "Release", made.id, svc.id, {"runId": made_run.id}))

    for s, svc in enumerate(new, start=start):
        staged = None
        for e, env in enumerate(envs):
            base = now - timedelta(days=3, minutes=e) + timedelta(hours=s)  # later services newer
            sha = f"{s:03x}{e}abcdef"
            run(release(svc, env, "1", "Failed", base, sha + "01"), svc, "Failed")
            run(release(svc, env, "2", "Active", base + timedelta(hours=1), sha + "02"), svc, "Succeeded")
            third = base + timedelta(hours=2)
            if env.name == "prod":  # staging's current release, promoted
                promoted = release(svc, env, "3", "Active", third + timedelta(hours=1), staged.sha)
                run(promoted, svc, "Succeeded", kind="Promote", source=staged)
            else:
                current = release(svc, env, "3", "Active", third, sha + "03")
                run(current, svc, "Succeeded")
                staged = current
            if env.name == "staging":
                image = f"{svc.repo}:{current.sha}"
                observations.append(
                    Observation(
                        service_id=svc.id,
                        environment_id=env.id,
                        adapter="k8s",
                        connection="k8s-test",
                        release_id=current.id,
                        expected=image,
                        running=image if s % 2 else f"{svc.repo}:0000000",
                        drifted=not s % 2,
                        checked_at=now,
                    )
                )
            if env.name == "dev":
                release(svc, env, "4", "Draft", base + timedelta(hours=5), sha + "04")
            if env.name == "staging":
                run(release(svc, env, "4", "Promoting", base + timedelta(hours=5), sha + "04"), svc, "Running")
        for n, status in enumerate(("triggered", "acknowledged", "resolved")):
            started = now - timedelta(hours=n + 1, minutes=s)
            incidents.append(
                Incident(
                    id=f"inc-{s:03d}-{n}",
                    service_id=svc.id,
                    title=f"{status} on {svc.name}",
                    severity=("high", "critical", "low")[n],
                    status=status,
                    started_at=started,
                    acknowledged_at=started + timedelta(minutes=5) if status == "acknowledged" else None,
                    resolved_at=started + timedelta(minutes=30) if status == "resolved" else None,
                    link=f"https://pd.example.com/{s}/{n}",
                )
            )
            events.append(("incident.create", "Incident", f"inc-{s:03d}-{n}", svc.id, {"severity": "high"}))
    Release.objects.bulk_create(releases)
    WorkflowRun.objects.bulk_create(runs)
    RunLogEntry.objects.bulk_create(logs)
    Incident.objects.bulk_create(incidents)
    Observation.objects.bulk_create(observations)
    with acting_as("test"):
        append(
            [
                AuditEvent(actor="system:test", action=a, subject_type=t, subject_id=i, service_id=svc, metadata=m)
                for a, t, i, svc, m in events
            ]
        )
        deployment_state.rebuild()


@pytest.fixture
def sized(db):
    """`sized(n)`: grow the data to `n` services (it only grows); checks it against the domain's rules."""

    def make(services: int):
        grow(services)
        assert deployment_state.differences() == []
        assert Release.objects.filter(is_current=True).count() == services * 3
        assert set(Release.objects.values_list("status", flat=True)) == {"Draft", "Promoting", "Active", "Failed"}

    return make


# --- the documents ---

NESTED_SERVICES = """
{
  services(first: 30) {
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id name repo archived archivedAt createdAt adapters { deployments }
        environments {
          id name region cluster policyRefs archived
          placements { adapter region cluster default }
          currentReleases(first: 30) {
            edges { node { id version status isCurrent service { id name } environment { id name } } }
          }
        }
        currentReleases { id version environment { name } service { name } }
        incidents(open: true, first: 5) {
          pageInfo { hasNextPage }
          edges { node { id severity status startedAt service { id name } } }
        }
        releases(first: 5) {
          pageInfo { hasNextPage endCursor }
          edges { cursor node { id version status isCurrent supersededBy supersededAt environment { name } } }
        }
        auditEvents(first: 3) { edges { node { seq ts action subjectType subjectId serviceId } } }
      }
    }
  }
}
"""

RELEASES = """
{
  releases(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id sha version status createdAt activatedAt isCurrent supersededBy supersededAt
        service { id name } environment { id name }
        runs { id kind state startedAt finishedAt logs { ts level message meta } }
        timeline { id kind state releaseId sourceReleaseId release { id } sourceRelease { id version } }
      }
    }
  }
}
"""

SERVICES_INDEX = """
{
  servicesIndex(first: 50) {
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
}
"""

AUDIT_EVENTS = """
query Trail($after: String) {
  auditEvents(first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { seq ts actor action subjectType subjectId serviceId metadata hash } }
  }
}
"""

INCIDENT_CREATE = """
mutation Open($service: ID!) {
  incidentCreate(input: {serviceId: $service, severity: high, link: "https://pd.example.com/new", title: "x"}) {
    errors { field code message }
    incident { id status severity startedAt service { id name } }
  }
}
"""

RELEASE_CREATE = """
mutation Draft($service: ID!, $env: ID!, $sha: String!) {
  releaseCreate(input: {serviceId: $service, envId: $env, sha: $sha, version: "9.9.9"}) {
    errors { field code message }
    release { id status isCurrent service { id name } environment { id name } }
  }
}
"""

ME = "{ me { actor role authMethod } }"

WORKFLOW_RUNS = """
{
  workflowRuns(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id kind state actor startedAt finishedAt
        release { id version status service { id name } }
        sourceRelease { id }
        logs(last: 3) { ts level message meta }
      }
    }
  }
}
"""

ENVIRONMENTS_DOC = """
{
  environments(first: 5) {
    edges {
      node {
        id name region cluster policyRefs placements { adapter region cluster }
        services(first: 30) { edges { node { id name adapters { deployments } } } }
        currentReleases(first: 30) { edges { node { id version status service { id name } environment { name } } } }
      }
    }
  }
}
"""

CHANGE_WINDOWS = """
{
  changeWindows(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name timezone days start end summary createdAt } }
  }
}
"""

FREEZES = """
{
  freezes(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id title startsAt endsAt envIds reason createdAt environments { id name region } } }
  }
}
"""

ENVIRONMENT_POLICY = """
{
  environment(id: "env-prod") {
    id name policyRefs
    policy(serviceId: "svc-001", action: promote, at: "2026-12-07T10:00:00+01:00") {
      allowed deniedBy { policy reason } nextAllowedAt action at evaluated
      windows { name ref timezone summary open nextChangeAt }
    }
  }
}
"""

OBSERVATION = "serviceId adapter currentReleaseId expected running drifted error checkedAt"
ENVIRONMENT_DRIFT = f"""
{{
  environmentDrift(envId: "env-staging") {{
    envId connection mode checkedAt drifted {{ {OBSERVATION} }} services {{ {OBSERVATION} }}
  }}
}}
"""

# Exact counts, pinned for the whole request: a new query in any of these is a change to notice. Bearer dev
# tokens cost no query, so each count is the document's own. Where PostgreSQL differs it is named: there each
# refresh of the read model takes the trail's head lock again (overview.deployment_state._upsert, one more
# round trip; SQLite's IMMEDIATE transaction holds the write lock already), once per write below.
QUERIES = {
    # the page; its environments (the links, joined); their current releases, and those releases' services
    # and environments; the services' own current releases, their environments and services; open incidents
    # (one windowed query for every service) and their services; releases (windowed) and their environments;
    # audit events (windowed): one query per relation asked, none per object.
    "nested services": 13,
    # the page; services; environments; the runs of every release and the promotions made from them
    # (runs and timeline share one load); those runs' logs; their releases; their source releases.
    "releases": 7,
    # the services page; their (service, environment) rows; their service states and audit tails.
    "services index": 3,
    "audit events, first page": 1,
    "audit events, second page": 1,  # the signed cursor is checked without a query
    # REST's path: the service looked up twice (the serializer's field, the model's clean), the generated id
    # probed, five check constraints and the one-open-incident-per-source rule validated (each in a savepoint),
    # the insert, the audit event (head, insert, the service's tail, head, the webhooks that may want it), the
    # service's row of the read model, the two savepoints around it all; then the payload's incident's service. And
    # its default release: what ran in the service's environments when it started (incidents.releases, one query).
    "incidentCreate": {"sqlite": 31, "postgresql": 32},
    # the same, with the environment and the service-environment link checked, six constraints, and the
    # (service, environment) row of the read model; then the release's service and environment.
    "releaseCreate": {"sqlite": 37, "postgresql": 38},
    "me": 0,
    # the page; releases; their services; source releases; the last 3 log entries of each run (windowed).
    "workflow runs": 5,
    # the page; services (the links, joined); current releases; their services; their environments.
    "environments": 5,
    "change windows": 1,
    "freezes": 2,  # the page; the environments of all its freezes
    # the environment; the service (it exists); the promotion's source; the windows its refs name; the freezes;
    # the service's open incidents: as REST's policy endpoint.
    "environment policy": 6,
    "environment drift": 2,  # the environment; its observations, with their services and releases
}


def _policy(data, size) -> bool:
    """Monday 10:00 in Berlin: the window is open (until 17:00), svc-001's critical incident refuses it; every
    freeze of prod (over in January) was evaluated, then its refs."""
    policy, refs = data["environment"]["policy"], data["environment"]["policyRefs"]
    window = [(w["name"], w["open"], w["nextChangeAt"]) for w in policy["windows"]]
    return (
        policy["allowed"] is False
        and [d["policy"] for d in policy["deniedBy"]] == ["policy:incident-gate:critical"]
        and window == [("w-000", True, "2026-12-07T16:00:00Z")]
        and sorted(policy["evaluated"][:size]) == [f"freeze:frz-{s:03d}" for s in range(size)]
        and policy["evaluated"][size:] == refs
    )


def _after_first_page(client) -> dict:
    return {"after": client(AUDIT_EVENTS)["auditEvents"]["pageInfo"]["endCursor"]}


# name: (role, document, variables or a function of the client giving them, a check of the data at `size`)
CASES = {
    "nested services": (
        "viewer",
        NESTED_SERVICES,
        {},
        lambda data, size: (
            len(nodes := [e["node"] for e in data["services"]["edges"]]) == size
            and all(len(n["environments"]) == 3 and len(n["currentReleases"]) == 3 for n in nodes)
            and all(len(env["currentReleases"]["edges"]) == size for env in nodes[0]["environments"])
            and all(len(n["incidents"]["edges"]) == 2 and len(n["releases"]["edges"]) == 5 for n in nodes)
            and all(len(n["auditEvents"]["edges"]) == 3 for n in nodes)
        ),
    ),
    "releases": (
        "viewer",
        RELEASES,
        {},
        lambda data, size: (
            len(nodes := [e["node"] for e in data["releases"]["edges"]]) == min(50, 11 * size)
            and {n["status"] for n in nodes} == {"Draft", "Promoting", "Active", "Failed"}
            and any(r["logs"] for n in nodes for r in n["runs"])
            and any(run["sourceRelease"] for n in nodes for run in n["timeline"])
        ),
    ),
    "services index": (
        "viewer",
        SERVICES_INDEX,
        {},
        lambda data, size: (
            len(nodes := [e["node"] for e in data["servicesIndex"]["edges"]]) == size
            and all(len(n["environments"]) == 3 and n["auditTail"] for n in nodes)
        ),
    ),
    "audit events, first page": (
        "viewer",
        AUDIT_EVENTS,
        {},
        lambda data, size: len(data["auditEvents"]["edges"]) == 50,
    ),
    "audit events, second page": (
        "viewer",
        AUDIT_EVENTS,
        _after_first_page,
        lambda data, size: data["auditEvents"]["edges"][0]["node"]["seq"] == 51,
    ),
    "incidentCreate": (
        "deployer",
        INCIDENT_CREATE,
        {"service": "svc-001"},
        lambda data, size: (
            data["incidentCreate"]["errors"] == []
            and data["incidentCreate"]["incident"]["service"]["name"] == "service 001"
        ),
    ),
    "releaseCreate": (
        "deployer",
        RELEASE_CREATE,
        {"service": "svc-001", "env": "env-staging", "sha": "0123abc"},
        lambda data, size: (
            data["releaseCreate"]["errors"] == []
            and data["releaseCreate"]["release"]["environment"]["name"] == "staging"
        ),
    ),
    "me": ("viewer", ME, {}, lambda data, size: data["me"]["role"] == "viewer"),
    "workflow runs": (
        "viewer",
        WORKFLOW_RUNS,
        {},
        lambda data, size: (
            len(nodes := [e["node"] for e in data["workflowRuns"]["edges"]]) == min(50, 10 * size)
            and all(n["release"]["service"]["name"] and 1 <= len(n["logs"]) <= 3 for n in nodes)
            and any(n["sourceRelease"] for n in nodes)
        ),
    ),
    "environments": (
        "viewer",
        ENVIRONMENTS_DOC,
        {},
        lambda data, size: all(
            len(e["node"]["services"]["edges"]) == size and len(e["node"]["currentReleases"]["edges"]) == size
            for e in data["environments"]["edges"]
        ),
    ),
    "change windows": (
        "viewer",
        CHANGE_WINDOWS,
        {},
        lambda data, size: (
            [e["node"]["name"] for e in data["changeWindows"]["edges"]] == [f"w-{s:03d}" for s in range(size)]
        ),
    ),
    "freezes": (
        "viewer",
        FREEZES,
        {},
        lambda data, size: (
            [e["node"]["id"] for e in data["freezes"]["edges"]] == [f"frz-{s:03d}" for s in reversed(range(size))]
            and all(
                [env["name"] for env in edge["node"]["environments"]] == ["staging", "prod"]
                for edge in data["freezes"]["edges"]
            )
        ),
    ),
    "environment policy": ("viewer", ENVIRONMENT_POLICY, {}, _policy),
    "environment drift": (
        "viewer",
        ENVIRONMENT_DRIFT,
        {},
        lambda data, size: (
            len(data["environmentDrift"]["services"]) == size
            and len(data["environmentDrift"]["drifted"]) == (size + 1) // 2
            and data["environmentDrift"]["checkedAt"] is not None
        ),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_the_query_count_is_pinned_and_does_not_grow_with_the_data(
    name, sized, graphql, django_assert_num_queries, settings
):
    settings.INDEX_CACHE = False  # the index computed, not served from the cache (its head read is REST's)
    role, document, variables, check = CASES[name]
    client = graphql(role)
    expected = QUERIES[name]
    if isinstance(expected, dict):
        expected = expected[connection.vendor]
    for size in (SMALL, LARGE):
        sized(size)
        given = variables(client) if callable(variables) else variables
        with django_assert_num_queries(expected):
            response = client.post(document, **given)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        assert check(body["data"], size), f"{name} at {size} services: {body['data']}"
