"""The deployment-state read model (overview.deployment_state) against random histories: a state machine drives
the real domain functions (releases created, deployed, ended, promoted; incidents opened, moved, edited;
services and environments archived and restored; links made and removed from either side; fixtures loaded)
and after every step the stored rows must equal the read model's own recomputation (`differences()`) and an
oracle computed here, in Python, from the domain's rows. Refused operations must change nothing."""

import functools
import itertools
import json
import shutil
import tempfile
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from audit.models import AuditEvent
from controlplane.errors import Conflict
from controlplane.identity.context import acting_as
from incidents import lifecycle as incident_lifecycle
from incidents.models import Incident
from overview import deployment_state
from overview.models import DeploymentState, ServiceState
from releases import lifecycle, runs, workflows
from releases.models import Release, WorkflowRun
from services import lifecycle as archiving
from services.models import Environment, Service
from tests.conftest import examples

ENVIRONMENTS = ["env-dev", "env-stage", "env-prod"]
INITIAL_LINKS = {"svc-a": ENVIRONMENTS, "svc-b": ["env-dev", "env-stage"]}
SEVERITIES = ["low", "medium", "high", "critical"]
STATUSES = ["Draft", "Promoting", "Active", "Failed"]
LINKS = Service.environments.through

shas = st.sampled_from(["abcdef1", "1234567", "9f3b7de"])
severities = st.sampled_from(SEVERITIES)
environments = st.sampled_from(ENVIRONMENTS)


# --- the oracle: what the read model should hold, computed here from the domain's rows ---


def expected_deployments() -> dict[tuple[str, str], tuple]:
    releases = list(
        Release.objects.values("id", "service_id", "environment_id", "status", "created_at", "activated_at")
    )
    started = {}
    for release_id, started_at in WorkflowRun.objects.values_list("release_id", "started_at"):
        started[release_id] = max(started_at, started.get(release_id, started_at))
    expected = {}
    for service_id, environment_id in LINKS.objects.values_list("service_id", "environment_id"):
        pair = [r for r in releases if (r["service_id"], r["environment_id"]) == (service_id, environment_id)]
        active = [r for r in pair if r["status"] == "Active"]
        promoting = [r for r in pair if r["status"] == "Promoting"]
        assert len(promoting) <= 1, promoting
        current = max(active, key=lambda r: (r["activated_at"], r["id"]), default=None)
        latest = max(pair, key=lambda r: (r["created_at"], r["id"]), default=None)
        promoting = promoting[0] if promoting else None
        expected[service_id, environment_id] = (
            current and current["id"],
            current and current["activated_at"],
            latest and latest["id"],
            latest and latest["created_at"],
            promoting and promoting["id"],
            promoting and started.get(promoting["id"]),
        )
    return expected


def expected_succession() -> dict[str, tuple]:
    """Every release's (is_current, superseded_by, superseded_at): in each (service, environment), the Active
    releases in activation order, each superseded by the next; the last is current."""
    releases = list(Release.objects.values("id", "service_id", "environment_id", "status", "activated_at"))
    expected = {r["id"]: (False, None, None) for r in releases}
    active = sorted(
        (r for r in releases if r["status"] == "Active"),
        key=lambda r: (r["service_id"], r["environment_id"], r["activated_at"], r["id"]),
    )
    for _, pair in itertools.groupby(active, key=lambda r: (r["service_id"], r["environment_id"])):
        pair = list(pair)
        for release, following in itertools.pairwise(pair):
            expected[release["id"]] = (False, following["id"], following["activated_at"])
        expected[pair[-1]["id"]] = (True, None, None)
    return expected


def expected_services() -> dict[str, tuple]:
    open_incidents = list(Incident.objects.exclude(status="resolved").values_list("service_id", "severity"))
    tails = dict(
        AuditEvent.objects.exclude(service_id="")
        .values("service_id")
        .annotate(tail=Max("seq"))
        .values_list("service_id", "tail")
    )
    expected = {}
    for service_id in Service.objects.values_list("id", flat=True):
        counts = tuple(open_incidents.count((service_id, s)) for s in SEVERITIES)
        highest = next((s for s, n in zip(reversed(SEVERITIES), reversed(counts), strict=True) if n), "")
        expected[service_id] = (*counts, highest, tails.get(service_id))
    return expected


def stored_deployments() -> dict[tuple[str, str], tuple]:
    return {
        (d.service_id, d.environment_id): (
            d.current_id,
            d.current_since,
            d.latest_id,
            d.latest_since,
            d.promoting_id,
            d.promoting_since,
        )
        for d in DeploymentState.objects.all()
    }


def stored_services() -> dict[str, tuple]:
    return {
        s.service_id: (
            s.open_low,
            s.open_medium,
            s.open_high,
            s.open_critical,
            s.highest_open_severity,
            s.audit_tail_id,
        )
        for s in ServiceState.objects.all()
    }


def snapshot() -> tuple:
    """Everything an operation could touch, to show that a refused one touched nothing."""
    return (
        sorted(Release.objects.values_list()),
        sorted(WorkflowRun.objects.values_list("id", "state", "finished_at", "task_id")),
        sorted(Incident.objects.values_list("id", "status", "severity", "acknowledged_at", "resolved_at")),
        sorted(Service.objects.values_list("id", "archived_at")),
        sorted(Environment.objects.values_list("id", "archived_at")),
        sorted(LINKS.objects.values_list("service_id", "environment_id")),
        sorted(DeploymentState.objects.values_list("service_id", "environment_id", *stored_columns(DeploymentState))),
        sorted(ServiceState.objects.values_list("service_id", *stored_columns(ServiceState))),
        AuditEvent.objects.aggregate(Max("seq")),
        DBTaskResult.objects.count(),  # the worker's queue
    )


def stored_columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if not f.primary_key and f.attname != "service_id"]


def refused(errors, operation):
    """`operation` raises one of `errors` and changes nothing: domain rows, read model, audit trail."""
    before = snapshot()
    with pytest.raises(errors):
        operation()
    assert snapshot() == before


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ReadModel(RuleBasedStateMachine):
    releases = Bundle("releases")

    def __init__(self):
        super().__init__()
        self.context = ExitStack()
        self.context.enter_context(acting_as("machine"))
        self.context.enter_context(transaction.atomic())  # rolled back in teardown: examples never meet
        self.directory = Path(tempfile.mkdtemp(prefix="read-model-fixtures-"))
        self.fixtures = itertools.count(1)
        self.numbers = itertools.count(1)  # ids of our own, so that a failing sequence reads (and replays) alike
        for env_id in ENVIRONMENTS:
            name = env_id.removeprefix("env-")
            Environment(
                id=env_id, name=name, region="r" if name == "prod" else "", cluster="c" if name == "prod" else ""
            ).save()
        for service_id, env_ids in INITIAL_LINKS.items():
            service = Service(
                id=service_id, name=service_id, repo=f"github.com/acme/{service_id}", deployment_adapters=["k8s"]
            )
            service.save()
            service.environments.set(env_ids)
        self.services = sorted(INITIAL_LINKS)

    def teardown(self):
        try:
            transaction.set_rollback(True)
        finally:
            self.context.close()
            shutil.rmtree(self.directory, ignore_errors=True)

    # --- what the machine knows of the domain, read back from it ---

    @staticmethod
    def linked(service_id: str, env_id: str) -> bool:
        return LINKS.objects.filter(service_id=service_id, environment_id=env_id).exists()

    @staticmethod
    def busy(service_id: str, env_id: str) -> bool:
        return Release.objects.filter(service_id=service_id, environment_id=env_id, status="Promoting").exists()

    @staticmethod
    def archived(model, pk: str) -> bool:
        return model.objects.get(pk=pk).is_archived

    def service(self, data) -> str:
        return data.draw(st.sampled_from(self.services), label="service")

    # --- releases: what moves the read model, drawn mostly from what can happen now ---

    @rule(target=releases, data=st.data(), sha=shas)
    def create_release(self, data, sha):
        """Mostly in a pair that takes releases; now and then anywhere (unlinked, archived: refused)."""
        open_pairs = sorted(
            LINKS.objects.filter(service__archived_at__isnull=True, environment__archived_at__isnull=True).values_list(
                "service_id", "environment_id"
            )
        )
        if open_pairs and data.draw(st.integers(0, 4), label="usual") > 0:
            service_id, env_id = data.draw(st.sampled_from(open_pairs), label="pair")
        else:
            service_id, env_id = self.service(data), data.draw(environments, label="environment")
        release = Release(
            id=f"rel-m{next(self.numbers)}", service_id=service_id, environment_id=env_id, sha=sha, version="1.0"
        )
        if (
            self.archived(Service, service_id)
            or self.archived(Environment, env_id)
            or not self.linked(service_id, env_id)
        ):
            refused(ValidationError, release.save)
            return multiple()
        release.save()
        assert Release.objects.get(pk=release.pk).status == "Draft"
        return release.pk

    @precondition(lambda self: Release.objects.filter(status="Draft").exists())
    @rule(data=st.data())
    def deploy_a_draft(self, data):
        drafts = list(Release.objects.filter(status="Draft").order_by("created_at", "id").values_list("id", flat=True))
        self.deploy(Release.objects.get(pk=data.draw(st.sampled_from(drafts), label="draft")))

    @precondition(lambda self: WorkflowRun.objects.filter(state="Running").exists())
    @rule(data=st.data(), succeeded=st.booleans())
    def end_a_rollout(self, data, succeeded):
        running = list(
            WorkflowRun.objects.filter(state="Running").order_by("started_at", "id").values_list("id", flat=True)
        )
        self.end(WorkflowRun.objects.get(pk=data.draw(st.sampled_from(running), label="run")), succeeded)

    @precondition(lambda self: Release.objects.filter(status="Active").exists())
    @rule(target=releases, data=st.data())
    def promote_an_active_release(self, data):
        """Mostly to another environment that takes releases; now and then to any (refused untouched)."""
        active = list(Release.objects.filter(status="Active").order_by("created_at", "id").values_list("id", flat=True))
        source = Release.objects.get(pk=data.draw(st.sampled_from(active), label="active"))
        elsewhere = sorted(
            LINKS.objects.filter(service_id=source.service_id, environment__archived_at__isnull=True)
            .exclude(environment_id=source.environment_id)
            .values_list("environment_id", flat=True)
        )
        if elsewhere and data.draw(st.integers(0, 4), label="usual") > 0:
            return self.promote(source, data.draw(st.sampled_from(elsewhere), label="environment"))
        return self.promote(source, data.draw(environments, label="environment"))

    @rule(
        target=releases,
        release=releases,
        operation=st.sampled_from(["deploy", "promote", "end", "activate"]),
        env=environments,
        succeeded=st.booleans(),
    )
    def operate_on_any_release(self, release, operation, env, succeeded):
        """Any operation on any release, whatever its state: done when it may be, refused untouched otherwise.
        ("activate" is the lifecycle's own move, which only a Promoting release's run may make: it is tried on
        the others, and refused.)"""
        release = Release.objects.get(pk=release)
        if operation == "deploy":
            self.deploy(release)
        elif operation == "promote":
            return self.promote(release, env)
        elif operation == "end":
            run = WorkflowRun.objects.filter(release=release).order_by("-started_at").first()
            if run is not None:
                self.end(run, succeeded)
        elif release.status != "Promoting":
            refused(Conflict, lambda: lifecycle.activate(release))
        return multiple()

    def deploy(self, release: Release) -> None:
        if release.status != "Draft" or self.busy(release.service_id, release.environment_id):
            refused(Conflict, lambda: workflows.deploy(release))
            return
        event("deploy: started")
        run = workflows.deploy(release)
        assert (run.state, Release.objects.get(pk=release.pk).status) == ("Running", "Promoting")

    def end(self, run: WorkflowRun, succeeded: bool) -> None:
        if run.state != "Running":
            before = snapshot()  # ended already: ending it again changes nothing
            assert not runs.finish(run, succeeded)
            assert snapshot() == before
            return
        assert runs.finish(run, succeeded)
        ended = Release.objects.get(pk=run.release_id)
        assert ended.status == ("Active" if succeeded else "Failed")
        if succeeded:
            superseded = Release.objects.filter(superseded_by=ended, superseded_at=ended.activated_at).exists()
            event(f"activated: {'current' if ended.is_current else 'behind a later activation'}")
            event(f"activated: {'superseded another' if superseded else 'first in its environment'}")
        assert not runs.finish(run, not succeeded)  # a run ends once

    def promote(self, source: Release, env: str):
        target = Environment.objects.get(pk=env)
        service_id = source.service_id
        if source.status != "Active" or env == source.environment_id:
            event("promote: refused, not Active or not elsewhere")
            refused(Conflict, lambda: workflows.promote(source, target))
            return multiple()
        if self.archived(Service, service_id) or target.is_archived or not self.linked(service_id, env):
            event("promote: refused, no new release there")
            refused(ValidationError, lambda: workflows.promote(source, target))
            return multiple()
        if self.busy(service_id, env):
            event("promote: refused, busy")
            refused(Conflict, lambda: workflows.promote(source, target))
            return multiple()
        event("promote: started")
        run = workflows.promote(source, target)
        assert run.release.status == "Promoting" and run.source_release_id == source.pk
        return run.release_id

    # --- incidents ---

    @rule(data=st.data(), severity=severities)
    def open_incident(self, data, severity):
        service_id = self.service(data)
        incident = Incident(
            id=f"inc-m{next(self.numbers)}",
            service_id=service_id,
            severity=severity,
            title="burning",
            link="https://pager.example/1",
        )
        if self.archived(Service, service_id):
            refused(ValidationError, incident.save)
            return
        incident.save()

    @precondition(lambda self: Incident.objects.exists())
    @rule(data=st.data(), operation=st.sampled_from(["acknowledge", "resolve", "severity"]), severity=severities)
    def move_or_edit_incident(self, data, operation, severity):
        """Ours and restored ones alike, in any status: moves that may not happen are refused untouched."""
        incidents = list(Incident.objects.order_by("started_at", "id").values_list("id", flat=True))
        incident = Incident.objects.get(pk=data.draw(st.sampled_from(incidents), label="incident"))
        if operation == "severity":
            incident.severity = severity
            incident.save()
            assert Incident.objects.get(pk=incident.pk).severity == severity
            return
        move = getattr(incident_lifecycle, operation)
        if incident.status == "resolved" or (operation == "acknowledge" and incident.status != "triggered"):
            refused(Conflict, lambda: move(incident))
            return
        move(incident)

    # --- services and environments ---

    @rule(data=st.data(), environment=st.booleans())
    def archive_or_restore(self, data, environment):
        """A service (which then refuses releases and incidents) or an environment (releases and links);
        archiving either is refused while a release of it is promoting."""
        entity = (
            Environment.objects.get(pk=data.draw(environments))
            if environment
            else Service.objects.get(pk=self.service(data))
        )
        if entity.is_archived:
            archiving.restore(entity)
            refused(Conflict, lambda: archiving.restore(entity))
        elif entity.releases.filter(status="Promoting").exists():
            refused(Conflict, lambda: archiving.archive(entity))
        else:
            archiving.archive(entity)
            refused(Conflict, lambda: archiving.archive(entity))

    @rule(
        data=st.data(),
        env=environments,
        how=st.sampled_from(["add", "remove", "set", "clear"]),
        from_environment=st.booleans(),
    )
    def relink(self, data, env, how, from_environment):
        """Link and unlink from either side, as the APIs and the admin do: add, remove, set or clear, each in its
        own transaction, like a request's (Django's related managers write without a savepoint: a refusal must
        undo the whole change)."""
        service_id = self.service(data)
        before = set(LINKS.objects.values_list("service_id", "environment_id"))
        if from_environment:
            manager, others, other = Environment.objects.get(pk=env).services, self.services, service_id
            mine = {(s, e) for s, e in before if e == env}

            def pair(o):
                return (o, env)
        else:
            manager, others, other = Service.objects.get(pk=service_id).environments, ENVIRONMENTS, env
            mine = {(s, e) for s, e in before if s == service_id}

            def pair(o):
                return (service_id, o)

        chosen = [other]
        if how == "set":
            chosen = data.draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others)), label="set")
            wanted = {pair(o) for o in chosen}
        elif how == "add":
            wanted = mine | {pair(other)}
        elif how == "remove":
            wanted = mine - {pair(other)}
        else:
            wanted = set()
        added, removed = wanted - mine, mine - wanted
        pinned = any(Release.objects.filter(service_id=s, environment_id=e).exists() for s, e in removed)
        # Adding from an archived environment's side is refused even when every pair is linked already.
        archived = any(self.archived(Environment, e) for _, e in added) or (
            from_environment and how == "add" and self.archived(Environment, env)
        )

        def change():
            with transaction.atomic():
                if how in ("add", "remove"):
                    getattr(manager, how)(*chosen)
                elif how == "set":
                    manager.set(chosen)
                else:
                    manager.clear()

        if pinned or archived:
            event(f"relink {how}: refused")
            refused(ValidationError, change)
            return
        event(f"relink {how}: {len(added)} added, {len(removed)} removed")
        change()
        assert set(LINKS.objects.values_list("service_id", "environment_id")) == (before - removed) | added

    # --- restores ---

    @rule(target=releases, data=st.data(), broken=st.integers(0, 5))
    def load_fixture(self, data, broken):
        """A restore: a new service linked to existing environments, releases of it (and perhaps of existing
        services, into their history) in every status, activated out of id order (one perhaps yet to come),
        created out of order too, runs for the Promoting ones, and incidents. Now and then the fixture holds a
        bad object: then it is refused whole, and nothing changes."""
        n = next(self.fixtures)
        service_id = f"svc-fx{n}"
        usable = [e for e in ENVIRONMENTS if not self.archived(Environment, e)]
        if not usable:
            return multiple()
        env_ids = data.draw(st.lists(st.sampled_from(usable), min_size=1, unique=True), label="links")
        base = timezone.now().replace(second=0, microsecond=0) - timedelta(days=30)
        objects = [
            {
                "model": "services.service",
                "pk": service_id,
                "fields": {
                    "name": f"Fixture {n}",
                    "repo": f"github.com/acme/fx{n}",
                    "deployment_adapters": ["k8s"],
                    "environments": env_ids,
                    "created_at": iso(base),
                },
            }
        ]
        own = data.draw(
            st.lists(st.tuples(st.sampled_from(env_ids), st.sampled_from(STATUSES)), min_size=1, max_size=5),
            label="releases",
        )
        specs = [(service_id, env_id, status) for env_id, status in own]
        existing = sorted(
            LINKS.objects.filter(service_id__in=self.services).values_list("service_id", "environment_id")
        )
        if existing:
            history = st.lists(st.tuples(st.sampled_from(existing), st.sampled_from(STATUSES)), max_size=2)
            specs += [(*pair, status) for pair, status in data.draw(history, label="history")]
        # Times in an order unrelated to the ids, and often equal (a few slots; the greater id wins a tie):
        # creations by the hour, activations by the minute (or, for one, a year from now: a later activation
        # already stored stays current when a rollout ends).
        created = data.draw(st.lists(st.integers(0, 2), min_size=len(specs), max_size=len(specs)), label="created")
        activated = data.draw(st.lists(st.integers(0, 1), min_size=len(specs), max_size=len(specs)), label="activated")
        future = data.draw(st.sampled_from([None, *range(len(specs))]), label="future")
        busy = set(Release.objects.filter(status="Promoting").values_list("service_id", "environment_id"))
        release_ids = []
        for i, (owner, env_id, status) in enumerate(specs):
            if status == "Promoting" and (owner, env_id) in busy:
                status = "Failed"  # one rollout at a time per (service, environment)
            release_id = f"rel-fx{n}-{i}"
            release_ids.append(release_id)
            created_at = base + timedelta(days=1, hours=created[i])
            activated_at = None
            if status == "Active":
                activated_at = (
                    base + timedelta(days=400) if i == future else base + timedelta(days=2, minutes=activated[i])
                )
            objects.append(
                {
                    "model": "releases.release",
                    "pk": release_id,
                    "fields": {
                        "service": owner,
                        "environment": env_id,
                        "sha": "abcdef1",
                        "version": f"fx{n}.{i}",
                        "status": status,
                        "created_at": iso(created_at),
                        "activated_at": activated_at and iso(activated_at),
                    },
                }
            )
            if status == "Promoting":
                busy.add((owner, env_id))
                objects.append(
                    {
                        "model": "releases.workflowrun",
                        "pk": f"run-fx{n}-{i}",
                        "fields": {
                            "kind": "Deploy",
                            "release": release_id,
                            "source_release": None,
                            "actor": "restored",
                            "state": "Running",
                            "started_at": iso(created_at + timedelta(minutes=5)),
                            "finished_at": None,
                        },
                    }
                )
        incidents = data.draw(
            st.lists(
                st.tuples(severities, st.sampled_from(["triggered", "acknowledged", "resolved"])),
                min_size=1,
                max_size=3,
            ),
            label="incidents",
        )
        for i, (severity, status) in enumerate(incidents):
            started = base + timedelta(days=3, hours=i)
            objects.append(
                {
                    "model": "incidents.incident",
                    "pk": f"inc-fx{n}-{i}",
                    "fields": {
                        "service": service_id,
                        "title": "restored",
                        "severity": severity,
                        "status": status,
                        "started_at": iso(started),
                        "acknowledged_at": iso(started + timedelta(minutes=1)) if status != "triggered" else None,
                        "resolved_at": iso(started + timedelta(minutes=2)) if status == "resolved" else None,
                        "link": f"https://pager.example/fx{n}-{i}",
                    },
                }
            )
        if not broken:  # last, so that everything before it was written (and must be undone)
            bad = {**objects[-1]["fields"], "severity": "apocalyptic"}
            objects.append({"model": "incidents.incident", "pk": f"inc-fx{n}-bad", "fields": bad})
        path = self.directory / f"restore-{n}.json"
        path.write_text(json.dumps(objects))
        load = functools.partial(call_command, "loaddata", str(path), verbosity=0)
        if not broken:
            event("fixture: refused")
            refused(CommandError, load)
            return multiple()
        event(f"fixture: {len(specs) - len(own)} releases into existing services' history")
        load()
        self.services.append(service_id)
        assert AuditEvent.objects.order_by("-seq").values_list("action", flat=True).first() == "fixture.load"
        return multiple(*release_ids)

    # --- after every step ---

    @invariant()
    def stored_state_equals_its_recomputation(self):
        assert list(deployment_state.differences()) == []

    @invariant()
    def stored_state_equals_the_oracle(self):
        assert stored_deployments() == expected_deployments()
        succession = {
            r.pk: (r.is_current, r.superseded_by_id, r.superseded_at)
            for r in Release.objects.only("is_current", "superseded_by", "superseded_at")
        }
        assert succession == expected_succession()
        assert stored_services() == expected_services()


def test_read_model_follows_every_history(db):
    # About 10-20 s on SQLite in the full profile (more on PostgreSQL).
    run_state_machine_as_test(
        ReadModel,
        settings=settings(
            max_examples=examples(40),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
