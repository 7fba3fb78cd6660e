"""DORA metrics from the control plane's own records (docs/metrics.md): how often production changes, how long a
change takes to get there, how often a deployment fails, how long it takes to recover from one, and how much of
the deploying is rework; and the DORA 2024 performance cluster the figures fall in.

A **deployment** is a workflow run (Deploy, Promote or Rollback) that made a release Active in a production
environment of the window's scope, counted when its run finished, in the half-open window [since, until) (UTC).
A **failed deployment** is one whose run failed (an attempt, counted with the deployments in the change failure
rate's total), one that was rolled back (a rollback names its release), or one an incident is linked to
(`Incident.release`). Everything else follows from those rows, in Python: two queries whatever the data's size (the
environments, and the window's runs with what the figures need of each), and one for a drill-down's incidents.

Each figure has its drill-down: the deployments behind it (`Figures.drill(metric)`), as many as it counts.

This is the read side across apps (releases and incidents), so it lives in `overview` (tests/test_layers.py).
"""

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from controlplane.api.base import as_stored
from controlplane.models import ID_PATTERN
from controlplane.timestamps import rfc3339
from incidents.models import Incident
from releases.models import Release, RunKind, RunState, WorkflowRun
from services.models import Environment, Service

REPORT = "DORA 2024"  # the report whose performance clusters the tier comes from
DEFAULT_DAYS = 30
METRICS = (
    "deploymentFrequency",
    "leadTimeForChanges",
    "changeFailureRate",
    "failedDeploymentRecoveryTime",
    "reworkRate",
)
LEVELS = ("low", "medium", "high", "elite")  # worst to best
CHANGES = (RunKind.DEPLOY, RunKind.PROMOTE)  # a rollback brings back an old change: no lead time of its own
DAY = 86400

# The DORA 2024 report's clusters as bounds on each figure (docs/metrics.md, "Tier"): a figure is at the best level
# whose bound it meets. Its medium cluster has a lower change failure rate (10%) than its high one (20%): medium
# teams deploy less often, not more safely, so a rate up to 20% holds back neither; above it, the low cluster's 40%
# is nearer than anything else.
PER_DAY_AT_LEAST = {"elite": 1.0, "high": 1 / 7, "medium": 1 / 30}  # on demand; weekly; monthly
LEAD_TIME_AT_MOST = {"elite": DAY - 1, "high": 7 * DAY, "medium": 30 * DAY}  # under a day; a week; a month
FAILURE_RATE_AT_MOST = {"elite": 0.05, "high": 0.20, "medium": 0.20}
RECOVERY_AT_MOST = {"elite": 3600 - 1, "high": DAY - 1, "medium": DAY - 1}  # under an hour; under a day


@dataclass(frozen=True)
class Window:
    """What the figures are about: deployments of `service_id` (None: every service) into `environment_ids`
    that finished in [since, until)."""

    since: datetime
    until: datetime
    service_id: str | None
    environment_id: str | None  # as asked: None means the production environments
    environment_ids: tuple[str, ...]

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / DAY

    def query(self) -> dict[str, str]:
        """The window as the API's query parameters: what a drill-down link carries, so it counts the same rows
        whenever it is followed."""
        asked = {"serviceId": self.service_id, "envId": self.environment_id}
        return {**{k: v for k, v in asked.items() if v}, "since": rfc3339(self.since), "until": rfc3339(self.until)}


def window(
    service_id: str | None = None,
    environment_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> Window:
    """The window asked for, with its defaults: until now, since 30 days before until, the production
    environments. ValidationError keyed by the query parameter (serviceId, envId, since) for an unknown service or
    environment, or a window that is empty. Two queries at most."""
    errors: dict[str, list[str]] = {}
    if until is None:  # now, to the next whole second (as shown and linked), so that nothing done by now is left out
        now = now or timezone.now()
        until = now.replace(microsecond=0) + (timedelta(seconds=1) if now.microsecond else timedelta())
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        errors["since"] = [f"must be before until ({rfc3339(until)}): the window is [since, until)."]
    if service_id and not (ID_PATTERN.fullmatch(service_id) and Service.objects.filter(pk=service_id).exists()):
        errors["serviceId"] = [f"unknown service {service_id!r}."]
    environments = {e.pk: e for e in Environment.objects.only("pk", "name")}
    if environment_id:
        if environment_id not in environments:
            errors["envId"] = [f"unknown environment {environment_id!r}."]
        ids = (environment_id,)
    else:
        ids = tuple(sorted(pk for pk, e in environments.items() if e.is_production))
    if errors:
        raise ValidationError(errors)
    return Window(since, until, service_id or None, environment_id or None, ids)


SUCCEEDED, FAILED = RunState.SUCCEEDED.value, RunState.FAILED.value
ROLLBACK = RunKind.ROLLBACK.value
CHANGE_KINDS = frozenset(kind.value for kind in CHANGES)


def _instant(value) -> datetime | None:
    """A time as the database returns it (SQLite: UTC text, or a naive UTC datetime for a column it knows the type
    of; PostgreSQL: an aware datetime) as a naive UTC datetime, which is all the figures compare: read as stored,
    without Django's per-value conversions, which cost a wide window most of its time."""
    if value is None or (type(value) is datetime and value.tzinfo is None):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value.astimezone(UTC).replace(tzinfo=None)


class Deployment:
    """One run into the window's environments that ended on or after `since` (an attempt, when it failed), with
    what the figures ask of it."""

    __slots__ = (
        "change_committed_at",
        "change_created_at",
        "environment_id",
        "failed",
        "finished_at",
        "incident_ids",
        "kind",
        "lead",
        "linked",
        "recovered_by",
        "release_id",
        "rework",
        "rolled_back_by",
        "run_id",
        "service_id",
        "sha",
        "started_at",
        "state",
        "succeeded",
        "version",
    )

    def __init__(self, row: dict):
        self.run_id, self.kind, self.state = row["id"], row["kind"], row["state"]
        self.release_id, self.service_id = row["release_id"], row["release__service_id"]
        self.environment_id, self.sha, self.version = (
            row["release__environment_id"],
            row["release__sha"],
            row["release__version"],
        )
        self.started_at, self.finished_at = _instant(row["started_at"]), _instant(row["finished_at"])
        self.change_committed_at = _instant(row["change_committed_at"])  # the first commit time of (service, sha)
        self.change_created_at = _instant(row["change_created_at"])  # the first release of (service, sha)
        self.rolled_back_by = row["rolled_back_by"]  # the first rollback naming its release
        self.linked = bool(row["linked"])  # an incident is linked to its release
        self.succeeded = self.state == SUCCEEDED
        self.failed = not self.succeeded or bool(self.rolled_back_by) or self.linked
        self.incident_ids: list[str] = []  # read only for the rows shown (Figures.drill)
        self.lead = self._lead_time()
        self.recovered_by: Deployment | None = None
        self.rework = False

    @property
    def failed_because(self) -> list[str]:
        reasons = [] if self.succeeded else ["runFailed"]
        return reasons + (["rolledBack"] if self.rolled_back_by else []) + (["incident"] if self.linked else [])

    def _lead_time(self) -> tuple[int, str] | None:
        """Seconds from the change's commit (else its first release's creation) to this deployment, and which
        of the two it was measured from; None for a rollback or a failed run."""
        if not self.succeeded or self.kind not in CHANGE_KINDS:
            return None
        if self.change_committed_at:
            start, source = self.change_committed_at, "committedAt"
        else:
            start, source = self.change_created_at, "releaseCreatedAt"
        return max(0, round((self.finished_at - start).total_seconds())), source

    @property
    def recovery_seconds(self) -> int | None:
        if self.recovered_by is None:
            return None
        return round((self.recovered_by.finished_at - self.finished_at).total_seconds())

    def as_json(self) -> dict:
        lead = self.lead
        return {
            "runId": self.run_id,
            "kind": self.kind,
            "state": self.state,
            "releaseId": self.release_id,
            "serviceId": self.service_id,
            "envId": self.environment_id,
            "sha": self.sha,
            "version": self.version,
            "startedAt": rfc3339(self.started_at),
            "finishedAt": rfc3339(self.finished_at),
            "leadTimeSeconds": lead[0] if lead else None,
            "leadTimeFrom": lead[1] if lead else None,
            "failed": self.failed,
            "failedBecause": self.failed_because,
            "rolledBackBy": self.rolled_back_by,
            "incidentIds": self.incident_ids,
            "recoveredByRunId": self.recovered_by.run_id if self.recovered_by else None,
            "recoveredAt": rfc3339(self.recovered_by.finished_at) if self.recovered_by else None,
            "recoverySeconds": self.recovery_seconds,
            "rework": self.rework,
        }


COLUMNS = (
    "id",
    "kind",
    "state",
    "release_id",
    "release__service_id",
    "release__environment_id",
    "release__sha",
    "release__version",
    "started_at",
    "finished_at",
    "change_committed_at",
    "change_created_at",
    "rolled_back_by",
    "linked",
)


def _runs(w: Window):
    """The runs the figures read: each one into the window's environments that ended on or after `since`, also
    after `until` (a later deployment may be a failure's recovery)."""
    # Read by the finish time's index (run_finished_idx), what a window bounds: the runs of 30 days, not the
    # environments' releases of all time. So the state is sorted out from the rows (a condition on it has a
    # planner read every run of that state through its index), and the environment is compared lower-cased (ids
    # are lower-case already), which no index serves: SQLite, without statistics, would otherwise prefer the
    # releases' index on the environment and read every release ever made there.
    runs = WorkflowRun.objects.alias(environment=Lower("release__environment_id")).filter(
        finished_at__gte=w.since, environment__in=w.environment_ids
    )
    return runs.filter(release__service_id=w.service_id) if w.service_id else runs


def deployments(w: Window) -> list[Deployment]:
    """The window's deployments and failed attempts (see `_runs`) in the order they ended, each with its change's
    first commit and release times, the rollback that named its release, and whether an incident is linked to it.
    One query: each of those is a lookup by an index per run."""
    change = Release.objects.filter(service_id=OuterRef("release__service_id"), sha=OuterRef("release__sha"))
    rows = (
        _runs(w)
        .annotate(
            change_committed_at=Subquery(
                change.filter(committed_at__isnull=False).order_by("committed_at").values("committed_at")[:1]
            ),
            change_created_at=Subquery(change.order_by("created_at").values("created_at")[:1]),
            rolled_back_by=Subquery(
                Release.objects.filter(rollback_of_id=OuterRef("release_id"))
                .order_by("created_at", "id")
                .values("id")[:1]
            ),
            linked=Exists(Incident.objects.filter(release_id=OuterRef("release_id"))),
        )
        .order_by()  # sorted below: the finish time's index serves the range, not an order with a tie-break
        .values(*COLUMNS)
    )
    found = [Deployment(row) for row in as_stored(rows) if row["state"] in (SUCCEEDED, FAILED)]
    found.sort(key=lambda d: (d.finished_at, d.run_id))
    return found


def linked_incidents(w: Window, found: list[Deployment]) -> None:
    """The incidents linked to the releases of `found` (of the window `w`), oldest first, into each one's
    `incident_ids`. One query, from the incidents linked to a release of the window's scope; none when no row of
    `found` has one."""
    wanted = {d.release_id for d in found if d.linked}
    if not wanted:
        return
    scope = {"environment__in": w.environment_ids, "release__runs__finished_at__gte": w.since}  # as `_runs` reads
    if w.service_id:
        scope["release__service_id"] = w.service_id
    linked: dict[str, list[str]] = {}
    incidents = Incident.objects.alias(environment=Lower("release__environment_id")).filter(**scope)
    rows = incidents.order_by("started_at", "id").values_list("release_id", "id").distinct()
    for release_id, incident_id in rows:
        if release_id in wanted and incident_id not in linked.setdefault(release_id, []):
            linked[release_id].append(incident_id)
    for d in found:
        d.incident_ids = linked.get(d.release_id, [])


def _follow_recoveries(w: Window, found: list[Deployment]) -> None:
    """Per service and environment, in the order the runs ended: a failed deployment of the window is recovered by
    the next deployment there that is not itself failed (`recovered_by`); a deployment of the window is rework when
    it is a rollback, or when it comes after a failed deployment of the window there that has not recovered yet,
    the recovering one included."""
    waiting: dict[tuple[str, str], list[Deployment]] = {}
    until = _instant(w.until)
    for d in found:
        place = (d.service_id, d.environment_id)
        pending = waiting.setdefault(place, [])
        in_window = d.finished_at < until
        if d.succeeded:
            d.rework = in_window and (d.kind == ROLLBACK or bool(pending))
            if not d.failed:
                for failure in pending:
                    failure.recovered_by = d
                pending.clear()
        if d.failed and in_window:
            pending.append(d)


def _median(values: list[int]) -> int | None:
    return round(statistics.median(values)) if values else None


def _p90(values: list[int]) -> int | None:
    """The 90th percentile by nearest rank: the smallest value at least 90% of them are at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _level(value: float | None, bounds: dict[str, float], at_least: bool = False) -> str | None:
    """The best level whose bound `value` meets (at most the bound, or at least it); "low" when it meets none;
    None when there is no value to judge."""
    if value is None:
        return None
    for level in ("elite", "high", "medium"):
        if (value >= bounds[level]) if at_least else (value <= bounds[level]):
            return level
    return "low"


@dataclass
class Figures:
    """The five figures of a window, their tier, and the deployments behind each."""

    window: Window
    found: list[Deployment]
    rows: dict[str, list[Deployment]]
    figures: dict[str, dict]
    tier: dict
    incidents_read: bool = False

    def drill(self, metric: str) -> list[Deployment]:
        """The deployments behind `metric`'s figure, newest first: as many as it counts, each with the incidents
        linked to it (read once, in one query, when one has any)."""
        if not self.incidents_read:
            linked_incidents(self.window, self.found)
            self.incidents_read = True
        return sorted(self.rows[metric], key=lambda d: (d.finished_at, d.run_id), reverse=True)

    def as_json(self) -> dict:
        w = self.window
        return {
            "serviceId": w.service_id,
            "envId": w.environment_id,
            "envIds": list(w.environment_ids),
            "since": rfc3339(w.since),
            "until": rfc3339(w.until),
            "days": round(w.days, 4),
            **self.figures,
            "tier": self.tier,
        }


def measure(w: Window) -> Figures:
    """The figures of the window `w` (docs/metrics.md): one query; a drill-down reads its incidents (`drill`)."""
    found = deployments(w)
    _follow_recoveries(w, found)
    until = _instant(w.until)
    in_window = [d for d in found if d.finished_at < until]
    deployed = [d for d in in_window if d.succeeded]
    attempts = [d for d in in_window if not d.succeeded]  # failed runs: attempted deployments
    changes = [d for d in deployed if d.lead is not None]
    leads = [d.lead[0] for d in changes]
    from_commit = sum(d.lead[1] == "committedAt" for d in changes)
    failed = [d for d in in_window if d.failed]
    recovered = [d for d in failed if d.recovered_by is not None]
    recoveries = [d.recovery_seconds for d in recovered]
    rework = [d for d in deployed if d.rework]
    per_day = round(len(deployed) / w.days, 4)
    figures = {
        "deploymentFrequency": {"count": len(deployed), "perDay": per_day},
        "leadTimeForChanges": {
            "median": _median(leads),
            "p90": _p90(leads),
            "count": len(changes),
            "measuredFrom": {"committedAt": from_commit, "releaseCreatedAt": len(changes) - from_commit},
        },
        "changeFailureRate": {
            "failed": len(failed),
            "total": len(deployed) + len(attempts),
            "rate": _rate(len(failed), len(deployed) + len(attempts)),
        },
        "failedDeploymentRecoveryTime": {
            "median": _median(recoveries),
            "count": len(recovered),
            "unrecovered": len(failed) - len(recovered),
        },
        "reworkRate": {"count": len(rework), "total": len(deployed), "rate": _rate(len(rework), len(deployed))},
    }
    rows = {
        "deploymentFrequency": deployed,
        "leadTimeForChanges": changes,
        "changeFailureRate": failed,
        "failedDeploymentRecoveryTime": recovered,
        "reworkRate": rework,
    }
    return Figures(w, found, rows, figures, tier(figures))


def tier(figures: dict) -> dict:
    """The DORA 2024 cluster each figure falls in, and the window's: the lowest of them (a team is elite only
    where every figure is). No level where nothing was deployed or attempted, and none for a figure with nothing
    to measure (no failure: nothing to recover from)."""
    rate = figures["changeFailureRate"]
    by_metric = {
        "deploymentFrequency": _level(figures["deploymentFrequency"]["perDay"], PER_DAY_AT_LEAST, at_least=True),
        "leadTimeForChanges": _level(figures["leadTimeForChanges"]["median"], LEAD_TIME_AT_MOST),
        "changeFailureRate": _level(rate["rate"], FAILURE_RATE_AT_MOST),
        "failedDeploymentRecoveryTime": _level(figures["failedDeploymentRecoveryTime"]["median"], RECOVERY_AT_MOST),
    }
    if not rate["total"]:
        by_metric = dict.fromkeys(by_metric)
    judged = [level for level in by_metric.values() if level is not None]
    overall = min(judged, key=LEVELS.index) if judged else None
    return {"level": overall, "report": REPORT, "byMetric": by_metric}
