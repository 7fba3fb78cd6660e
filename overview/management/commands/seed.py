"""Build a large, realistic dataset fast: services x environments x releases, runs, incidents, and the
audit trail that goes with them. For benchmarks and demos.

Rows are written in bulk, skipping per-row validation for speed; they are built valid by construction
(the tests check a seeded database against every invariant). The audit events continue the hash chain,
the seed itself is recorded as one `seed.load` event, and the read model is rebuilt in the same transaction.
"""

from collections import Counter
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent, append
from audit.writer import record
from controlplane import adapters
from controlplane.identity.context import acting_as
from incidents.models import Incident
from overview import deployment_state
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service

ENVIRONMENTS = [
    ("dev", "", ""),
    ("staging", "", ""),
    ("prod", "us-east-1", "prod-main"),
    ("qa", "", ""),
    ("perf", "", ""),
    ("prod-eu", "eu-west-1", "prod-eu"),
]
SEVERITIES = ["low", "medium", "high", "critical"]
BATCH = 5000


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--services", type=int, default=200)
        parser.add_argument("--environments", type=int, default=3, choices=range(1, len(ENVIRONMENTS) + 1))
        parser.add_argument("--releases", type=int, default=20, help="per service and environment")

    def handle(self, *args, services, environments, releases, **options):
        if Service.objects.filter(id__startswith="svc-seed-").exists():
            raise CommandError("this database is already seeded (services svc-seed-* exist).")
        with acting_as("seed"), transaction.atomic():
            counts = self.seed(services, environments, releases)
            record("seed.load", "Seed", "seed", {"objects": counts})
            deployment_state.rebuild()  # the bulk writes sent no signals
        self.stdout.write(self.style.SUCCESS("Seeded: " + ", ".join(f"{n} {m}" for m, n in counts.items())))

    def seed(self, n_services, n_envs, n_releases) -> dict:
        now = timezone.now()
        envs = []
        for name, region, cluster in ENVIRONMENTS[:n_envs]:
            env = Environment.objects.filter(name=name).first()
            if env is None:
                env = Environment(id=f"env-seed-{name}", name=name, region=region, cluster=cluster)
                env.save()
            envs.append(env)
        names = adapters.names()
        services = [
            Service(
                id=f"svc-seed-{s:05d}",
                name=f"service {s:05d}",
                repo=f"github.com/seed/service-{s:05d}",
                deployment_adapters=[names[s % len(names)], names[(s + 2) % len(names)]],
                created_at=now - timedelta(days=400),
            )
            for s in range(n_services)
        ]
        Service.objects.bulk_create(services, batch_size=BATCH)
        links = Service.environments.through
        links.objects.bulk_create(
            [links(service_id=svc.id, environment_id=env.id) for svc in services for env in envs], batch_size=BATCH
        )
        events = [("service.create", "Service", svc.id, svc.id, {"name": svc.name}) for svc in services]
        rel_rows, run_rows, log_rows = [], [], []
        for s, svc in enumerate(services):
            for e, env in enumerate(envs):
                for r in range(n_releases):
                    created = now - timedelta(hours=(n_releases - r) * 6, minutes=e)
                    last = r == n_releases - 1
                    status = "Draft" if last and (s + e) % 5 == 0 else ("Failed" if r % 7 == 3 else "Active")
                    release = Release(
                        id=f"rel-s{s:05d}-e{e}-r{r:03d}",
                        service_id=svc.id,
                        environment_id=env.id,
                        sha=f"{(s * 1_000_003 + e * 10_007 + r) & 0xFFFFFFFFFF:010x}",
                        version=f"1.{r}.{s % 10}",
                        status=status,
                        created_at=created,
                        activated_at=created + timedelta(minutes=5) if status == "Active" else None,
                    )
                    rel_rows.append(release)
                    events.append(("release.create", "Release", release.id, svc.id, {"version": release.version}))
                    if status != "Draft" and r >= n_releases - 3:
                        run = WorkflowRun(
                            id=f"run-s{s:05d}-e{e}-r{r:03d}",
                            kind="Deploy",
                            release_id=release.id,
                            actor="seed-bot",
                            state="Succeeded" if status == "Active" else "Failed",
                            started_at=created + timedelta(minutes=1),
                            finished_at=created + timedelta(minutes=5),
                        )
                        run_rows.append(run)
                        log_rows += [
                            RunLogEntry(
                                run_id=run.id,
                                ts=run.started_at,
                                level="info",
                                message="Plan generated",
                                meta={"steps": 3},
                            ),
                            RunLogEntry(
                                run_id=run.id,
                                ts=run.finished_at,
                                level="info" if status == "Active" else "error",
                                message="Rollout finished" if status == "Active" else "Health check failed",
                                meta={},
                            ),
                        ]
                        verb = "release.activate" if status == "Active" else "release.fail"
                        events.append((verb, "Release", release.id, svc.id, {"runId": run.id}))
        Release.objects.bulk_create(rel_rows, batch_size=BATCH)
        WorkflowRun.objects.bulk_create(run_rows, batch_size=BATCH)
        RunLogEntry.objects.bulk_create(log_rows, batch_size=BATCH)
        incidents = [
            Incident(
                id=f"inc-seed-{s:05d}",
                service_id=svc.id,
                title=f"Seeded incident on {svc.name}",
                severity=SEVERITIES[s % 4],
                status="triggered" if s % 2 else "resolved",
                started_at=now - timedelta(hours=s % 48),
                resolved_at=None if s % 2 else now,
                link=f"https://incidents.example.com/seed/{s}",
            )
            for s, svc in enumerate(services)
            if s % 3 == 0
        ]
        Incident.objects.bulk_create(incidents, batch_size=BATCH)
        events += [("incident.create", "Incident", i.id, i.service_id, {"severity": i.severity}) for i in incidents]
        append(
            [
                AuditEvent(
                    actor="system:seed",
                    action=action,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    service_id=service_id,
                    metadata=metadata,
                )
                for action, subject_type, subject_id, service_id, metadata in events
            ],
            batch_size=BATCH,
        )
        return dict(
            Counter(
                {
                    "services.service": len(services),
                    "releases.release": len(rel_rows),
                    "releases.workflowrun": len(run_rows),
                    "releases.runlogentry": len(log_rows),
                    "incidents.incident": len(incidents),
                    "audit.auditevent": len(events),
                }
            )
        )
