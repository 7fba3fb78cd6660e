"""The services index over GraphQL: the same rows as REST's /api/services/index/, read from the
deployment-state read model in three queries a page (overview/services_index.py). The types are Plain: each
field reads the entry's key of its name, as REST renders it, so an answer is the entries projected onto the
document's selection (controlplane/graphql/plain.py) rather than resolved field by field."""

import graphene
import orjson
from django.core.exceptions import ValidationError

from controlplane import adapters
from controlplane.api.base import filtered_rows
from controlplane.db import json_sql
from controlplane.graphql.limits import weigh
from controlplane.graphql.plain import Plain, Rendered
from controlplane.graphql.types import (
    AFTER,
    FIRST,
    DateTime,
    Keyset,
    arguments_of,
    connection,
    invalid_arguments,
    paginate,
    plain,
    valid_filterset,
)
from incidents.schema import SeverityEnum
from overview import dora, services_index
from overview.api import DoraQuery
from releases.schema import ReleaseStatusEnum
from services.filtersets import ServiceFilterSet
from services.models import Service
from services.schema import Adapters


class IndexRelease(Plain):
    id = graphene.ID(required=True)
    version = graphene.String(required=True)
    sha = graphene.String(required=True)
    status = graphene.Field(ReleaseStatusEnum, required=True)
    created_at = DateTime(source="createdAt", description="The latest release: when it was created.")
    activated_at = DateTime(source="activatedAt", description="The current release: when it was activated.")


class IndexEnvironment(Plain):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    latest_release = graphene.Field(
        IndexRelease, source="latestRelease", description="The newest release, whatever its status."
    )
    current_release = graphene.Field(
        IndexRelease, source="currentRelease", description="What runs there: the Active one activated last."
    )


class OpenIncidents(Plain):
    low = graphene.Int(required=True)
    medium = graphene.Int(required=True)
    high = graphene.Int(required=True)
    critical = graphene.Int(required=True)


class IndexIncidents(Plain):
    open = graphene.Field(OpenIncidents, required=True, description="Open incidents, per severity.")
    highest_open_severity = graphene.Field(SeverityEnum, source="highestOpenSeverity")


class AuditTail(Plain):
    seq = graphene.Int(required=True)
    ts = DateTime(required=True)
    action = graphene.String(required=True)


class ServicesIndexEntry(Plain):
    """A service's row of the services index."""

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    repo = graphene.String(required=True)
    adapters = graphene.Field(Adapters, required=True)
    environments = graphene.List(graphene.NonNull(IndexEnvironment), required=True, description="By name.")
    incidents = graphene.Field(IndexIncidents, required=True)
    audit_tail = graphene.Field(AuditTail, source="auditTail", description="The service's latest audit event.")


# --- DORA metrics (overview.dora, docs/metrics.md): what REST's GET /api/metrics/dora/ answers ---

DoraMetricEnum = graphene.Enum("DoraMetric", [(m, m) for m in dora.METRICS], description="A DORA figure.")
DoraLevelEnum = graphene.Enum(
    "DoraLevel", [(level, level) for level in dora.LEVELS], description=f"A performance cluster of {dora.REPORT}."
)


class DoraDeploymentFrequency(graphene.ObjectType):
    count = graphene.Int(required=True, description="Runs that made a release Active in the window.")
    per_day = graphene.Float(required=True, source="perDay")


class DoraLeadTimeSources(graphene.ObjectType):
    committed_at = graphene.Int(required=True, source="committedAt", description="From the change's committedAt.")
    release_created_at = graphene.Int(
        required=True, source="releaseCreatedAt", description="No committedAt: from the change's first release."
    )


class DoraLeadTime(graphene.ObjectType):
    median = graphene.Int(description="Seconds; null: no change was deployed.")
    p90 = graphene.Int(description="Seconds, by nearest rank.")
    count = graphene.Int(required=True, description="Deployments of changes (deploys and promotions).")
    measured_from = graphene.Field(DoraLeadTimeSources, required=True, source="measuredFrom")


class DoraChangeFailureRate(graphene.ObjectType):
    failed = graphene.Int(required=True)
    total = graphene.Int(required=True, description="Deployments and failed attempts.")
    rate = graphene.Float(description="failed / total; null when total is 0.")


class DoraRecoveryTime(graphene.ObjectType):
    median = graphene.Int(description="Seconds from a failed deployment to the next good one there.")
    count = graphene.Int(required=True, description="Failed deployments that have recovered.")
    unrecovered = graphene.Int(required=True)


class DoraReworkRate(graphene.ObjectType):
    count = graphene.Int(required=True, description="Rollbacks, and deployments while a failure was unrecovered.")
    total = graphene.Int(required=True)
    rate = graphene.Float(description="count / total; null when total is 0.")


class DoraLevels(graphene.ObjectType):
    deployment_frequency = graphene.Field(DoraLevelEnum, source="deploymentFrequency")
    lead_time_for_changes = graphene.Field(DoraLevelEnum, source="leadTimeForChanges")
    change_failure_rate = graphene.Field(DoraLevelEnum, source="changeFailureRate")
    failed_deployment_recovery_time = graphene.Field(DoraLevelEnum, source="failedDeploymentRecoveryTime")


class DoraTier(graphene.ObjectType):
    level = graphene.Field(DoraLevelEnum, description="The lowest of byMetric's; null: nothing deployed or attempted.")
    report = graphene.String(required=True, description="The report whose clusters these are.")
    by_metric = graphene.Field(DoraLevels, required=True, source="byMetric")


class DoraDeployment(graphene.ObjectType):
    """A deployment behind a figure (REST's `?drill=<metric>` rows)."""

    run_id = graphene.ID(required=True, source="runId")
    kind = graphene.String(required=True, description="Deploy, Promote or Rollback.")
    state = graphene.String(required=True, description="Succeeded, or Failed: an attempt that failed.")
    release_id = graphene.ID(required=True, source="releaseId")
    service_id = graphene.ID(required=True, source="serviceId")
    env_id = graphene.ID(required=True, source="envId")
    sha = graphene.String(required=True)
    version = graphene.String(required=True)
    started_at = DateTime(required=True, source="startedAt")
    finished_at = DateTime(required=True, source="finishedAt")
    lead_time_seconds = graphene.Int(source="leadTimeSeconds")
    lead_time_from = graphene.String(source="leadTimeFrom", description="committedAt or releaseCreatedAt.")
    failed = graphene.Boolean(required=True)
    failed_because = graphene.List(
        graphene.NonNull(graphene.String), required=True, source="failedBecause", description="runFailed, …"
    )
    rolled_back_by = graphene.ID(source="rolledBackBy")
    incident_ids = graphene.List(graphene.NonNull(graphene.ID), required=True, source="incidentIds")
    recovered_by_run_id = graphene.ID(source="recoveredByRunId")
    recovered_at = DateTime(source="recoveredAt")
    recovery_seconds = graphene.Int(source="recoverySeconds")
    rework = graphene.Boolean(required=True)


class DoraMetrics(graphene.ObjectType):
    """The DORA metrics of a window (docs/metrics.md)."""

    service_id = graphene.ID(source="serviceId")
    env_id = graphene.ID(source="envId", description="As asked; null: the production environments (envIds).")
    env_ids = graphene.List(graphene.NonNull(graphene.ID), required=True, source="envIds")
    since = DateTime(required=True, description="Inclusive.")
    until = DateTime(required=True, description="Exclusive.")
    days = graphene.Float(required=True)
    deployment_frequency = graphene.Field(DoraDeploymentFrequency, required=True, source="deploymentFrequency")
    lead_time_for_changes = graphene.Field(DoraLeadTime, required=True, source="leadTimeForChanges")
    change_failure_rate = graphene.Field(DoraChangeFailureRate, required=True, source="changeFailureRate")
    failed_deployment_recovery_time = graphene.Field(
        DoraRecoveryTime, required=True, source="failedDeploymentRecoveryTime"
    )
    rework_rate = graphene.Field(DoraReworkRate, required=True, source="reworkRate")
    tier = graphene.Field(DoraTier, required=True)
    deployments = graphene.List(
        graphene.NonNull(DoraDeployment),
        required=True,
        metric=DoraMetricEnum(required=True),
        description="The deployments behind a figure, newest first: as many as it counts.",
    )

    @staticmethod
    def resolve_deployments(answer, info, metric):
        return [d.as_json() for d in answer[FIGURES].drill(plain(metric))]


FIGURES = "_figures"  # the computed figures, kept beside their JSON for `deployments`


class DoraQueries(graphene.ObjectType):
    dora_metrics = graphene.Field(
        graphene.NonNull(DoraMetrics),
        service_id=graphene.ID(description="One service; default: every service."),
        env_id=graphene.ID(description="One environment; default: every production one."),
        since=DateTime(description="Inclusive; default: 30 days before until."),
        until=DateTime(description="Exclusive; default: now."),
        description="DORA metrics from the control plane's own records (docs/metrics.md).",
    )

    @staticmethod
    def resolve_dora_metrics(root, info, service_id=None, env_id=None, since=None, until=None):
        # REST's query parameters for the same question: the same rules and words.
        asked = arguments_of(DoraQuery, {"serviceId": service_id, "envId": env_id, "since": since, "until": until})
        try:
            window = dora.window(asked.get("serviceId"), asked.get("envId"), asked.get("since"), asked.get("until"))
        except ValidationError as exc:
            invalid_arguments(exc.message_dict)
        figures = dora.measure(window)
        return {**figures.as_json(), FIGURES: figures}


# A computation over every deployment of the window (three queries), not a value read.
weigh("Query", "doraMetrics", 50)


ServicesIndexEntryConnection = connection(ServicesIndexEntry)
INDEX = Keyset(Service, ("name", "id"), "servicesIndex")


class Query(DoraQueries, graphene.ObjectType):
    services_index = graphene.Field(
        graphene.NonNull(ServicesIndexEntryConnection),
        first=FIRST,
        after=AFTER,
        q=graphene.String(description="Part of the id, name or repo."),
        adapter=graphene.String(description=f"One of: {', '.join(adapters.names())}."),
        env_id=graphene.ID(description="Only services linked to this environment."),
        archived=graphene.String(description="false (the default): in use; true: only archived; all: both."),
        description="Per service and environment the latest and current release, open incidents, the audit tail.",
    )

    @staticmethod
    def resolve_services_index(root, info, first=None, after=None, **filters):
        # The rows REST's index reads, by the same statement.
        filterset = valid_filterset(ServiceFilterSet, Service.objects.all(), filters)
        rows = filtered_rows(filterset, services_index.SERVICE_FIELDS)
        return paginate(rows, INDEX, first, after, build=_entries)


def _entries(page) -> list:
    """The page's entries as the database writes them: spliced into the answer as they are when the document
    asks for exactly what REST's index shows (controlplane.graphql.plain.Rendered), else projected."""
    texts, checked = services_index.written(page, check=True)
    if not checked:  # a value its type refuses: graphql-core's own errors, by the values
        return orjson.loads(json_sql.array(texts))
    return [Rendered(text, services_index.ENTRY_KEYS) for text in texts]
