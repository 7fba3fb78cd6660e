"""Releases and workflow runs over GraphQL: their types, queries and mutations (deploy and promote start
runs in the worker, as REST's do), and the releases of a service and an environment."""

import graphene
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from graphql import GraphQLError

from controlplane.graphql.types import (
    AFTER,
    FIRST,
    JSON,
    BreakGlassInput,
    Create,
    DateTime,
    DomainMutation,
    Keyset,
    PolicyDecision,
    Update,
    batched,
    by_id,
    checked,
    choice,
    connection,
    enum_of,
    extend,
    filtered,
    found,
    given,
    key_of,
    lookup,
    paginate,
    paginate_each,
)
from releases import approvals, drift, rollback, workflows
from releases.api import (
    ApproveSerializer,
    DeploySerializer,
    PromoteSerializer,
    RejectSerializer,
    ReleaseSerializer,
    RollbackSerializer,
)
from releases.filtersets import ReleaseFilterSet, WorkflowRunFilterSet
from releases.models import (
    Decision,
    LogLevel,
    Release,
    ReleaseStatus,
    RunApproval,
    RunKind,
    RunLogEntry,
    RunState,
    WorkflowRun,
)
from releases.timeline import by_release as timelines
from services.models import Environment, Service
from services.promotion import PROMOTION_ORDER
from services.schema import EnvironmentType, ModeEnum, ServiceType

ReleaseStatusEnum = enum_of(ReleaseStatus, "Draft → Promoting → Active or Failed.")
RunKindEnum = enum_of(
    RunKind,
    "Deploy: a Draft release to its environment. Promote: an Active one to another. Rollback: an earlier release "
    "brought back (a new release record).",
)
RunStateEnum = enum_of(
    RunState,
    "A run's progress: AwaitingApproval → Running → Succeeded or Failed, or AwaitingApproval → Rejected, Expired or "
    "Cancelled.",
)
DecisionEnum = graphene.Enum(
    "ApprovalDecision", [(value, value) for value in Decision.values], description="An approver's decision on a run."
)
LogLevelEnum = enum_of(LogLevel, "A log entry's level.")


def _by_pk(model, attname: str):
    """A loader of the `model` each object names in `attname`, one query for all of them."""

    def load(objects) -> dict:
        found = model.objects.in_bulk({getattr(o, attname) for o in objects} - {None})
        return {o.pk: found.get(getattr(o, attname)) for o in objects}

    return load


class ReleaseType(graphene.ObjectType):
    class Meta:
        name = "Release"

    id = graphene.ID(required=True)
    service_id = graphene.ID(required=True)
    env_id = graphene.ID(required=True, source="environment_id")
    service = graphene.Field(ServiceType, required=True)
    environment = graphene.Field(EnvironmentType, required=True)
    sha = graphene.String(required=True)
    version = graphene.String(required=True)
    status = choice(ReleaseStatusEnum, "status", required=True)
    created_at = DateTime(required=True)
    committed_at = DateTime(
        description="When its commit was made: where its lead time for changes starts; null: unknown."
    )
    activated_at = DateTime()
    is_current = graphene.Boolean(
        required=True, description="Runs in its environment now: the Active release there activated last."
    )
    superseded_by = graphene.ID(source="superseded_by_id", description="The release activated next in its place.")
    superseded_at = DateTime()
    rollback_of = graphene.ID(
        source="rollback_of_id", description="A rollback: the release it replaces (current when it was asked for)."
    )
    restores = graphene.ID(
        source="restores_id", description="A rollback: the earlier release whose sha and version it brings back."
    )
    runs = graphene.List(graphene.NonNull(lambda: WorkflowRunType), required=True, description="Its own, oldest first.")
    timeline = graphene.List(
        graphene.NonNull(lambda: WorkflowRunType),
        required=True,
        description="Its runs and the promotions made from it, in time order.",
    )

    @staticmethod
    def resolve_service(release, info):
        return batched(release, "service", _by_pk(Service, "service_id"))

    @staticmethod
    def resolve_environment(release, info):
        return batched(release, "environment", _by_pk(Environment, "environment_id"))

    @staticmethod
    def resolve_runs(release, info):
        return [run for run in batched(release, "timeline", timelines, default=[]) if run.release_id == release.pk]

    @staticmethod
    def resolve_timeline(release, info):
        return batched(release, "timeline", timelines, default=[])


class RunLogEntryType(graphene.ObjectType):
    class Meta:
        name = "RunLogEntry"

    ts = DateTime(required=True)
    level = choice(LogLevelEnum, "level", required=True)
    message = graphene.String(required=True)
    meta = JSON(required=True, description="Redacted as stored.")


class RunApprovalType(graphene.ObjectType):
    class Meta:
        name = "RunApproval"

    actor = graphene.String(required=True, description="Who decided: never the run's own actor.")
    decision = choice(DecisionEnum, "decision", required=True)
    comment = graphene.String(required=True, description="Empty when none was given (a rejection always has one).")
    at = DateTime(required=True)


class WorkflowRunType(graphene.ObjectType):
    class Meta:
        name = "WorkflowRun"

    id = graphene.ID(required=True)
    kind = choice(RunKindEnum, "kind", required=True)
    state = choice(RunStateEnum, "state", required=True)
    actor = graphene.String(required=True, description="Who started it.")
    mode = graphene.Field(
        ModeEnum,
        required=True,
        description="live: its environment's connection deployed for real (the log says which adapter); simulated: "
        "no platform was touched. Set when it started.",
    )
    started_at = DateTime(required=True)
    finished_at = DateTime(description="null while running.")
    release_id = graphene.ID(required=True)
    release = graphene.Field(ReleaseType, required=True, description="The release it moves.")
    source_release_id = graphene.ID(description="Promote runs: the Active release promoted.")
    source_release = graphene.Field(ReleaseType)
    approvals_required = graphene.Int(
        required=True, description="Distinct approvals it needs before it starts (policy:approval:<n>); 0: none."
    )
    approvals = graphene.List(
        graphene.NonNull(RunApprovalType), required=True, description="Each principal's decision, oldest first."
    )
    waiting_reason = graphene.String(
        description="Approved, but a policy keeps it from starting yet: why (the worker starts it once it may)."
    )
    logs = graphene.List(
        graphene.NonNull(RunLogEntryType),
        required=True,
        last=graphene.Int(description="Only the last entries, still oldest first."),
        description="In order.",
    )

    @staticmethod
    def resolve_release(run, info):
        return batched(run, "release", _by_pk(Release, "release_id"))

    @staticmethod
    def resolve_source_release(run, info):
        return batched(run, "source_release", _by_pk(Release, "source_release_id"))

    @staticmethod
    def resolve_approvals(run, info):
        return batched(run, "approvals", _approvals, default=[])

    @staticmethod
    def resolve_waiting_reason(run, info):
        return run.waiting_reason or None

    @staticmethod
    def resolve_logs(run, info, last=None):
        if last is not None and last < 0:
            raise GraphQLError("last: must be 0 or more.", extensions={"code": "INVALID", "field": "last"})
        return batched(run, key_of("logs", {"last": last}), lambda runs: _logs(runs, last), default=[])


def _approvals(runs) -> dict:
    result: dict[str, list] = {}
    for decision in RunApproval.objects.filter(run_id__in=[r.pk for r in runs]).order_by("run_id", "at", "id"):
        result.setdefault(decision.run_id, []).append(decision)
    return result


def _logs(runs, last) -> dict:
    entries = RunLogEntry.objects.filter(run_id__in=[r.pk for r in runs])
    if last is not None:
        ranked = entries.annotate(
            _rank=Window(RowNumber(), partition_by=F("run_id"), order_by=[F("ts").desc(), F("id").desc()])
        )
        entries = ranked.filter(_rank__lte=last)
    result: dict[str, list] = {}
    for entry in entries.order_by("run_id", "ts", "id"):
        result.setdefault(entry.run_id, []).append(entry)
    return result


class ObservationType(graphene.ObjectType):
    """What the last drift check saw for a service through one live adapter (REST's drift `services` entries)."""

    class Meta:
        name = "DriftObservation"

    service_id = graphene.ID(required=True)
    adapter = graphene.String(required=True)
    current_release_id = graphene.ID(source="release_id", description="null: no current release there.")
    expected = graphene.String(description="The current release's image (repo:sha); null: no current release.")
    running = graphene.String(description="The image that runs on the platform; null: nothing runs.")
    drifted = graphene.Boolean(required=True)
    error = graphene.String(description="Why the platform could not be asked (drifted is then the last verdict).")
    checked_at = DateTime(required=True)

    @staticmethod
    def resolve_expected(observation, info):
        return observation.expected or None

    @staticmethod
    def resolve_running(observation, info):
        return observation.running or None

    @staticmethod
    def resolve_error(observation, info):
        return observation.error or None


class DriftType(graphene.ObjectType):
    """Whether what runs on an environment's platform is its current releases, as the last check saw it
    (`GET /api/environments/{id}/drift/`; releases/drift.py)."""

    class Meta:
        name = "EnvironmentDrift"

    env_id = graphene.ID(required=True)
    connection = graphene.String(description="null: the environment simulates, so nothing runs there to compare.")
    mode = graphene.Field(ModeEnum, required=True)
    checked_at = DateTime(description="The last check; null: never checked.")
    drifted = graphene.List(
        graphene.NonNull(ObservationType),
        required=True,
        description="Services whose target runs other than the current release.",
    )
    services = graphene.List(graphene.NonNull(ObservationType), required=True, description="Every service checked.")

    @staticmethod
    def resolve_env_id(report, info):
        return report.environment.pk

    @staticmethod
    def resolve_connection(report, info):
        return report.environment.connection or None

    @staticmethod
    def resolve_mode(report, info):
        return report.environment.mode

    @staticmethod
    def resolve_services(report, info):
        return report.observations


ReleaseConnection = connection(ReleaseType)
WorkflowRunConnection = connection(WorkflowRunType)
RUNNING = Keyset(Release, ("service_id",), "Environment.currentReleases")  # one current per service there
RELEASES = Keyset(Release, ("-created_at", "-id"), "releases")
SERVICE_RELEASES = Keyset(Release, ("-created_at", "-id"), "Service.releases")
RUNS = Keyset(WorkflowRun, ("-started_at", "-id"), "workflowRuns")


class ServiceReleases:
    releases = graphene.Field(
        graphene.NonNull(ReleaseConnection),
        env_id=graphene.ID(),
        status=ReleaseStatusEnum(),
        first=FIRST,
        after=AFTER,
        description="Newest first.",
    )
    current_releases = graphene.List(
        graphene.NonNull(ReleaseType),
        required=True,
        description="What runs in each environment, the environments in promotion order.",
    )

    @staticmethod
    def resolve_releases(service, info, first=None, after=None, env_id=None, status=None):
        queryset = filtered(ReleaseFilterSet, Release.objects.all(), {"env_id": env_id, "status": status})
        return batched(
            service,
            key_of("releases", {"first": first, "after": after, "envId": env_id, "status": status}),
            lambda services: paginate_each(queryset, SERVICE_RELEASES, "service_id", services, first, after),
        )

    @staticmethod
    def resolve_current_releases(service, info):
        return batched(service, "current_releases", _current, default=[])


class EnvironmentReleases:
    current_releases = graphene.Field(
        graphene.NonNull(ReleaseConnection),
        first=FIRST,
        after=AFTER,
        description="What runs here: each service's current release, by service id. As many as there are services.",
    )

    @staticmethod
    def resolve_current_releases(environment, info, first=None, after=None):
        current = Release.objects.filter(is_current=True)
        return batched(
            environment,
            key_of("current_releases", {"first": first, "after": after}),
            lambda environments: paginate_each(current, RUNNING, "environment_id", environments, first, after),
        )


def _current(services) -> dict:
    """Per service, what runs in each of its environments, the environments in promotion order."""
    result: dict[str, list] = {}
    current = Release.objects.filter(is_current=True, service_id__in=[s.pk for s in services])
    for release in current.order_by(*(f"environment__{field}" for field in PROMOTION_ORDER)):
        result.setdefault(release.service_id, []).append(release)
    return result


extend(ServiceType, ServiceReleases)
extend(EnvironmentType, EnvironmentReleases)


class Query(graphene.ObjectType):
    release = by_id(ReleaseType, Release)
    releases = graphene.Field(
        graphene.NonNull(ReleaseConnection),
        first=FIRST,
        after=AFTER,
        service_id=graphene.ID(),
        env_id=graphene.ID(),
        status=ReleaseStatusEnum(),
        sha=graphene.String(description="The sha or its start."),
        version=graphene.String(),
        is_current=graphene.Boolean(),
        description="Newest first.",
    )
    workflow_run = by_id(WorkflowRunType, WorkflowRun)
    workflow_runs = graphene.Field(
        graphene.NonNull(WorkflowRunConnection),
        first=FIRST,
        after=AFTER,
        release_id=graphene.ID(),
        service_id=graphene.ID(),
        env_id=graphene.ID(),
        kind=RunKindEnum(),
        state=RunStateEnum(),
        actor=graphene.String(),
        description="Newest first.",
    )

    environment_drift = graphene.Field(
        DriftType,
        env_id=graphene.ID(required=True),
        description="What the last drift check saw in the environment (no platform is asked); null: no such "
        "environment. `checkDrift` asks now.",
    )

    @staticmethod
    def resolve_environment_drift(root, info, env_id):
        environment = lookup(Environment, env_id).first()
        return drift.report(environment) if environment is not None else None

    @staticmethod
    def resolve_releases(root, info, first=None, after=None, **filters):
        return paginate(filtered(ReleaseFilterSet, Release.objects.all(), filters), RELEASES, first, after)

    @staticmethod
    def resolve_workflow_runs(root, info, first=None, after=None, **filters):
        return paginate(filtered(WorkflowRunFilterSet, WorkflowRun.objects.all(), filters), RUNS, first, after)


# --- mutations ---


class ReleaseCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    service_id = graphene.ID(required=True)
    env_id = graphene.ID(required=True, description="One of the service's environments.")
    sha = graphene.String(required=True, description="7-40 lower-case hex characters; immutable.")
    version = graphene.String(required=True)
    committed_at = DateTime(
        description="When its commit was made (not after the release's creation): where its lead time starts."
    )


class ReleaseUpdateInput(graphene.InputObjectType):
    version = graphene.String(description="Changeable while the release is Draft.")


class ReleaseCreate(Create):
    permission, serializer_class, input_type = "release.create", ReleaseSerializer, ReleaseCreateInput
    release = graphene.Field(ReleaseType)


class ReleaseUpdate(Update):
    permission, serializer_class, input_type = "release.update", ReleaseSerializer, ReleaseUpdateInput
    release = graphene.Field(ReleaseType)


DECISION = "The policies' refusal (with the POLICY_DENIED error); null when they allowed it."
BREAK_GLASS = "Override the policies' refusal: only for the roles in CONTROLPLANE_BREAK_GLASS_ROLES."


def _body(serializer_class, **arguments) -> dict:
    """The action's arguments as REST's body for it (`action_bodies`), checked by it: the same rules and words."""
    return checked(serializer_class, {key: value for key, value in given(arguments).items() if value is not None})


class ReleaseDeploy(DomainMutation):
    """Roll a Draft release out to its environment: Draft → Promoting, with a Deploy run in the worker, once
    the environment's policies allow it."""

    permission = "release.deploy"
    serializer_class, body_class = ReleaseSerializer, DeploySerializer
    run = graphene.Field(WorkflowRunType)
    decision = graphene.Field(PolicyDecision, description=DECISION)

    class Arguments:
        id = graphene.ID(required=True)
        break_glass = BreakGlassInput(description=BREAK_GLASS)

    @classmethod
    def perform(cls, id, break_glass=None):
        body = _body(DeploySerializer, break_glass=break_glass)
        return {"run": workflows.deploy(found(Release, id), break_glass=body.get("breakGlass"))}


class ReleasePromote(DomainMutation):
    """Take an Active release to another environment: a new release there, with a Promote run."""

    permission = "release.promote"
    serializer_class, body_class = ReleaseSerializer, PromoteSerializer
    release = graphene.Field(ReleaseType, description="The new release, in the target environment.")
    run = graphene.Field(WorkflowRunType)
    decision = graphene.Field(PolicyDecision, description=DECISION)

    class Arguments:
        id = graphene.ID(required=True)
        env_id = graphene.ID(required=True, description="The environment to promote to.")
        break_glass = BreakGlassInput(description=BREAK_GLASS)

    @classmethod
    def perform(cls, id, env_id, break_glass=None):
        # REST's body for the same action, so the same rules and words (a blank envId), checked first as there.
        body = _body(PromoteSerializer, env_id=env_id, break_glass=break_glass)
        run = workflows.promote(found(Release, id), body["envId"], break_glass=body.get("breakGlass"))
        return {"release": run.release, "run": run}


class WorkflowRunApprove(DomainMutation):
    """Approve a run awaiting approval (never your own; each principal once). The n-th distinct approval starts
    it, or leaves it approved and waiting (`waitingReason`) while a policy keeps it from starting."""

    permission, body_class = "run.approve", ApproveSerializer
    run = graphene.Field(WorkflowRunType)

    class Arguments:
        id = graphene.ID(required=True)
        comment = graphene.String()

    @classmethod
    def perform(cls, id, comment=None):
        body = _body(ApproveSerializer, comment=comment)
        return {"run": approvals.approve(found(WorkflowRun, id), comment=body.get("comment", ""))}


class WorkflowRunReject(DomainMutation):
    """Reject a run awaiting approval, saying why: it ends Rejected, and its release stays Draft."""

    permission, body_class = "run.reject", RejectSerializer
    run = graphene.Field(WorkflowRunType)

    class Arguments:
        id = graphene.ID(required=True)
        comment = graphene.String(required=True, description="Why: required, not blank.")

    @classmethod
    def perform(cls, id, comment):
        body = _body(RejectSerializer, comment=comment)
        return {"run": approvals.reject(found(WorkflowRun, id), body["comment"])}


class WorkflowRunCancel(DomainMutation):
    """Cancel a run awaiting approval (its actor or an admin): it ends Cancelled; its release stays Draft."""

    permission = "run.cancel"
    run = graphene.Field(WorkflowRunType)

    class Arguments:
        id = graphene.ID(required=True)

    @classmethod
    def perform(cls, id):
        return {"run": approvals.cancel(found(WorkflowRun, id))}


class ServiceRollbackInput(graphene.InputObjectType):
    service_id = graphene.ID(required=True)
    env_id = graphene.ID(required=True, description="The environment to roll back in.")
    reason = graphene.String(required=True, description="Why: 10-500 characters, kept in the audit trail.")
    to_release_id = graphene.ID(
        description="The earlier Active release there to restore; by default the one the current release superseded."
    )
    break_glass = BreakGlassInput(description=BREAK_GLASS)


class ServiceRollback(DomainMutation):
    """Put an earlier release of a service back in an environment: a new release (`rollbackOf`, `restores`) with a
    Rollback run in the worker, once the policies allow it (the shipped ones let rollbacks through)."""

    permission = "rollback"
    serializer_class, body_class = ReleaseSerializer, RollbackSerializer
    release = graphene.Field(ReleaseType, description="The new release, restoring the earlier one.")
    run = graphene.Field(WorkflowRunType)
    decision = graphene.Field(PolicyDecision, description=DECISION)

    class Arguments:
        input = ServiceRollbackInput(required=True)

    @classmethod
    def perform(cls, input):
        fields = given(input)
        service_id = fields.pop("serviceId")
        # REST's body for the same action, so the same rules and words, checked before the service is looked up.
        body = checked(RollbackSerializer, {key: value for key, value in fields.items() if value is not None})
        run = rollback.rollback(
            found(Service, service_id),
            body["envId"],
            body["reason"],
            body.get("toReleaseId"),
            break_glass=body.get("breakGlass"),
        )
        return {"release": run.release, "run": run}


class CheckDrift(DomainMutation):
    """Ask the platform now what runs in the environment (`POST /api/environments/{id}/drift/`): CONFLICT where it
    names no connection, since it simulates. A service becoming drifted or in sync again is audited."""

    permission = "drift.check"
    drift = graphene.Field(DriftType)

    class Arguments:
        env_id = graphene.ID(required=True)

    @classmethod
    def perform(cls, env_id):
        return {"drift": drift.check(found(Environment, env_id))}


class Mutation(graphene.ObjectType):
    release_create = ReleaseCreate.Field(required=True)
    release_update = ReleaseUpdate.Field(required=True)
    release_deploy = ReleaseDeploy.Field(required=True)
    release_promote = ReleasePromote.Field(required=True)
    workflow_run_approve = WorkflowRunApprove.Field(required=True)
    workflow_run_reject = WorkflowRunReject.Field(required=True)
    workflow_run_cancel = WorkflowRunCancel.Field(required=True)
    service_rollback = ServiceRollback.Field(required=True)
    check_drift = CheckDrift.Field(required=True)
