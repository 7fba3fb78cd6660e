"""The pages that cross apps (docs/pages.md): the services index (`/`), a service's page, the environments, the
DORA metrics (`/metrics/`).

Thin doors: they read the deployment-state read model (`overview.models`, `overview.services_index`), the
FilterSets and the domain's tables, each page in a constant number of queries whatever the data's size.
No writes here ("Roll back…" links to its confirmation, `overview/actions.py`), but for an environment's "Check
now" (`releases.drift.check`), which asks its platform what runs there and keeps the answer.
"""

import statistics
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Min, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from audit.models import AuditEvent
from controlplane import adapters, connections, holes
from controlplane.api import params
from controlplane.errors import Conflict
from controlplane.holes import Holed
from controlplane.identity.roles import can
from controlplane.identity.views import refused, sign_in_first
from controlplane.keyset import START, Keyset, NotACursor
from controlplane.models import ID_PATTERN
from incidents.models import SEVERITIES, Incident
from overview import dora, services_index
from overview.api import DoraQuery, drill_link
from overview.models import DeploymentState, ServiceState
from policies import status
from releases import drift, metrics, runs
from releases.models import Release, ReleaseStatus, WorkflowRun
from services.filtersets import ServiceFilterSet
from services.models import Environment, Service
from services.promotion import PROMOTION_ORDER

INDEX_PAGE_SIZE = 50
RECENT = 20  # releases, incidents and audit events on a service's page
CHART_DAYS = 30
ENVIRONMENT_PAGE_SIZE = 100
# The one pagination (controlplane.keyset): the index by name, an environment's services by name.
INDEX_ORDER = Keyset(Service, ("name", "id"), "page:index")
ENVIRONMENT_ORDER = Keyset(DeploymentState, ("service__name", "service_id"), "page:environment")


# --- the services index ---


def _index_rows(queryset):
    """`services_index.services()` with the audit tail's actor, which the page shows beside its action."""
    return queryset.values(*services_index.SERVICE_FIELDS, "state__audit_tail__actor")


def _entries(rows) -> list[dict]:
    entries = services_index.entries(rows)
    rows = {row["id"]: row for row in rows}  # (a service deleted since its page was read has no entry)
    for entry in entries:
        row = rows[entry["id"]]
        for env in entry["environments"]:
            latest = env["latestRelease"]
            if latest and latest["status"] == ReleaseStatus.PROMOTING:
                # How far its rollout has got is in the run's log, which no audit event announces: a hole.
                env["progress"] = holes.marker("progress", latest["id"], latest["version"])
        if entry["auditTail"]:
            entry["auditTail"]["actor"] = row["state__audit_tail__actor"]
        open_ = entry["incidents"]["open"]
        entry["incidents"]["total"] = sum(open_.values())
        entry["cells"] = {env["id"]: env for env in entry["environments"]}
    return entries


def _columns():
    """The environments in use, one column each, in promotion order."""
    in_use = Environment.objects.filter(archived_at__isnull=True).order_by(*PROMOTION_ORDER)
    return list(in_use.values("id", "name"))


def _open_columns() -> dict:
    """The environments in use, one column each in promotion order, with whether each is open for changes now
    and until when (`policies.status`: one Cedar batch for them all), and when the first of those changes
    (`changes_at`; the header asks again then, `refresh_in`, a hole)."""
    environments = list(Environment.objects.filter(archived_at__isnull=True).order_by(*PROMOTION_ORDER))
    statuses = status.environment_status(environments)
    columns = [{"id": e.pk, "name": e.name, "status": statuses[e.pk]} for e in environments]
    changes_at = status.first_change(statuses.values())
    return {
        "columns": columns,
        "changes_at": changes_at,
        "refresh_in": None if changes_at is None else holes.marker("refresh_in", holes.micros(changes_at)),
        "live_match": _live_match(columns),
    }


def _live_match(environments) -> str:
    """What an environment's open-or-closed status changes with: its own events, and any window's or freeze's."""
    return " ".join([*(e["id"] for e in environments), "ChangeWindow", "Freeze"])


def _with_cells(entries, columns):
    """Each entry's cells in the columns' order, a cell whose target has drifted marked so (one query)."""
    drifted = drift.drifted_pairs([column["id"] for column in columns]) if entries else set()
    for entry in entries:
        entry["row"] = [entry["cells"].get(column["id"]) for column in columns]
        for cell in entry["row"]:
            if cell is not None:
                cell["drifted"] = (entry["id"], cell["id"]) in drifted
    return entries


def _tiles() -> dict:
    """Deploys today, the change failure rate over 7 days (one query); open incidents by severity (one). And
    `changes_at`, when time alone changes the rate: the oldest run counted leaves the 7 days."""
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week_ago = now - timedelta(days=7)
    runs = WorkflowRun.objects.filter(started_at__gte=min(today, week_ago)).aggregate(
        today=Count("pk", filter=Q(started_at__gte=today)),
        oldest=Min("started_at", filter=Q(started_at__gte=week_ago)),
        **metrics.failure_counts(Q(started_at__gte=week_ago)),
    )
    open_ = ServiceState.objects.aggregate(**{s: Sum(f"open_{s}") for s in SEVERITIES})
    by_severity = [(s, open_[s] or 0) for s in reversed(SEVERITIES)]
    rate = metrics.change_failure_rate(runs["failed"], runs["finished"])
    return {
        "deploys_today": runs["today"],
        "failure_rate": rate,
        "failed": runs["failed"],
        "finished": runs["finished"],
        "open_by_severity": by_severity,
        "open_total": sum(n for _, n in by_severity),
        "changes_at": runs["oldest"] + timedelta(days=7) if runs["oldest"] else None,
    }


def _next_quarter_hour(now: datetime) -> datetime:
    """When a date may next change somewhere: every zone's offset from UTC is a whole number of quarter hours."""
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) + timedelta(minutes=15)


@require_safe
def index(request):
    """`/`: one row per service, one column per environment; search, filters, pages; summary tiles.

    Its content is rendered once per version of the data (the audit trail's head), page and filters, and kept
    in the services index's cache (CONTROLPLANE_INDEX_PAGE_CACHE); it is rendered without the request, so it
    shows nothing of who asks. What changes with the clock is either a hole filled per request (how long ago,
    when the header asks again) or bounds how long the content is kept (the environments' next opening or
    closing, a run leaving the 7 days, a new day); a rollout's progress, in the run's log, is a hole too. The
    shell (navigation, who is signed in, sign-out) is the principal's (`controlplane.holes.page`)."""
    fragment = request.GET.get("fragment", "")
    if request.principal is None:
        # A fragment is fetched by live.js: 401, not the sign-in page in place of a row.
        live = fragment in ("row", "columns")
        return HttpResponse("Sign in again.", status=401) if live else sign_in_first(request)
    if fragment == "columns":  # the header row: the environments, open or closed
        return HttpResponse(_filled(Holed.of(render_to_string("overview/_index_columns.html", _open_columns()))))
    if fragment == "row":
        return _index_row(request, _columns())
    key = f"page:index|{INDEX_PAGE_SIZE}|{request.path}?{request.GET.urlencode()}"
    content, status_code = services_index.under_head(
        key, lambda: _index_content(request), enabled=settings.INDEX_PAGE_CACHE
    )
    return HttpResponse(holes.page(request, "overview/index.html", _filled(content)), status=status_code)


def _index_content(request) -> tuple[tuple[Holed, int], float]:
    """The index's content for the request's page and filters, its status, and how many seconds it is good
    for as far as time goes (0: not kept, an error)."""
    opened = _open_columns()
    columns = opened["columns"]
    filterset = ServiceFilterSet(request.GET, queryset=Service.objects.all())
    if not filterset.is_valid():
        return _content({**opened, "errors": filterset.errors, "entries": []}, 400), 0
    queryset = filterset.qs
    if request.GET.get("incidents") == "open":
        queryset = queryset.exclude(state__highest_open_severity="")
    try:
        position = INDEX_ORDER.position(request.GET["cursor"]) if "cursor" in request.GET else START
    except NotACursor:
        errors = {"cursor": ["is not a page cursor this page issued; start from the first page."]}
        return _content({**opened, "entries": [], "query": request.GET, "errors": errors}, 400), 0
    page = INDEX_ORDER.page(_index_rows(queryset), INDEX_PAGE_SIZE, position)
    tiles = _tiles()
    context = {
        **opened,
        "entries": _with_cells(_entries(page.rows), columns),
        "tiles": tiles,
        "query": request.GET,
        "adapters": adapters.names(),
        "environments": columns,
        "next": _link(request, page.next_cursor()),
        "previous": _link(request, page.previous_cursor()),
    }
    now = timezone.now()
    until = min(t for t in (opened["changes_at"], tiles["changes_at"], _next_quarter_hour(now)) if t is not None)
    return _content(context, 200), (until - now).total_seconds()


def _content(context: dict, status_code: int) -> tuple[Holed, int]:
    return Holed.of(render_to_string("overview/_index.html", context)), status_code


def _filled(content: Holed) -> str:
    """`content` as of now: how long ago, when the header asks again, and each rollout's progress (one query,
    when a release is promoting)."""
    promoting = content.args("progress")
    done = runs.progress([release_id for release_id, _ in promoting]) if promoting else {}
    now = timezone.now()
    return content.fill(
        {
            "ago": holes.filling_ago(now),
            "refresh_in": lambda at: str(status.seconds_until(holes.instant(at), now)),
            "progress": lambda release_id, version: _progress(done.get(release_id), version),
        }
    )


def _progress(done: tuple[int, int] | None, version: str) -> str:
    if done is None:
        return ""
    return render_to_string("overview/_progress.html", {"done": done[0], "planned": done[1], "version": version})


def _link(request, cursor: str | None) -> str | None:
    """This page with the filters it was given, at `cursor`."""
    if cursor is None:
        return None
    params = request.GET.copy()
    params["cursor"] = cursor
    return f"{request.path}?{params.urlencode()}"


def _index_row(request, columns):
    service_id = request.GET.get("id", "")
    if not ID_PATTERN.fullmatch(service_id):  # PostgreSQL refuses a NUL byte in a query with an error
        raise Http404("No such service.")
    rows = list(_index_rows(Service.objects.filter(pk=service_id)))
    if not rows:
        raise Http404("No such service.")
    entry = _with_cells(_entries(rows), columns)[0]
    row = render_to_string("overview/_index_row.html", {"entry": entry, "columns": columns})
    return HttpResponse(_filled(Holed.of(row)))


# --- a service's page ---


def _bar_chart(series: list[tuple[str, float]], height: int = 60, bar: int = 10) -> dict:
    """Bars for an inline SVG: [(label, value)] → {width, height, bars: [{x, y, h, label, value}]}."""
    top = max((v for _, v in series), default=0)
    bars = []
    for i, (label, value) in enumerate(series):
        h = round(height * value / top, 1) if top else 0
        bars.append({"x": i * (bar + 2), "y": round(height - h, 1), "h": h, "label": label, "value": value})
    return {"width": len(series) * (bar + 2), "height": height, "bars": bars, "top": top}


def _charts(service_id: str, environments: list) -> dict:
    """Deploys per day over 30 days per environment and the change failure rate per day (one query); the
    median lead time from a release's creation to Active over the same days (one query)."""
    now = timezone.now()
    since = now - timedelta(days=CHART_DAYS - 1)
    start = timezone.localtime(since).date()
    days = [start + timedelta(days=n) for n in range(CHART_DAYS)]
    grouped = (
        WorkflowRun.objects.filter(release__service_id=service_id, started_at__gte=since)
        .annotate(day=TruncDate("started_at"))
        .values("day", "release__environment_id")
        .annotate(runs=Count("pk"), **metrics.failure_counts())
    )
    per_env: dict = {}
    failed: dict = {}
    finished: dict = {}
    for row in grouped:
        per_env.setdefault(row["release__environment_id"], {})[row["day"]] = row["runs"]
        failed[row["day"]] = failed.get(row["day"], 0) + row["failed"]
        finished[row["day"]] = finished.get(row["day"], 0) + row["finished"]
    deploys = [
        {"environment": env, "chart": _bar_chart([(d.isoformat(), per_env.get(env.id, {}).get(d, 0)) for d in days])}
        for env in environments
    ]
    # A day without a finished run is an empty bar.
    rate = [(d.isoformat(), metrics.change_failure_rate(failed.get(d, 0), finished.get(d, 0)) or 0) for d in days]
    total_failed, total_finished = sum(failed.values()), sum(finished.values())
    lead = [
        (activated - created).total_seconds()
        for created, activated in Release.objects.filter(
            service_id=service_id, activated_at__gte=since, activated_at__isnull=False
        ).values_list("created_at", "activated_at")
    ]
    return {
        "days": CHART_DAYS,
        "deploys": deploys,
        "failure": _bar_chart(rate),
        "failure_total": metrics.change_failure_rate(total_failed, total_finished),
        "lead_median": _duration(statistics.median(lead)) if lead else None,
        "lead_count": len(lead),
    }


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} s"


@require_safe
def service_detail(request, service_id: str):
    """`/services/<id>/`: its repo, adapters, environments with placements and policy refs, per environment
    the current and previous releases, its recent releases, incidents and audit tail, and charts."""
    if request.principal is None:
        return sign_in_first(request)
    service = Service.objects.select_related("state").prefetch_related("environments").filter(pk=service_id).first()
    if service is None:
        raise Http404("No such service.")
    environments = list(service.environments.all())  # in promotion order, the model's ordering
    # Every open incident of the service, from the read model (the incidents listed are only the latest).
    state = getattr(service, "state", None)
    deployments = {
        d.environment_id: d
        for d in DeploymentState.objects.filter(service_id=service_id).select_related("current", "latest", "promoting")
    }
    current_ids = [d.current_id for d in deployments.values() if d.current_id]
    previous = {r.superseded_by_id: r for r in Release.objects.filter(superseded_by_id__in=current_ids)}
    rows = []
    for env in environments:
        deployment = deployments.get(env.id)
        current = deployment.current if deployment else None
        placements = [
            (name, *adapters.get(name).effective_placement(env.region, env.cluster))
            for name in service.deployment_adapters
            if name in adapters.registry
        ]
        rows.append(
            {
                "environment": env,
                "placements": placements,
                "current": current,
                "current_since": deployment.current_since if deployment else None,
                "latest": deployment.latest if deployment else None,
                "promoting": deployment.promoting if deployment else None,
                "previous": previous.get(current.id) if current else None,
            }
        )
    releases = list(
        Release.objects.filter(service_id=service_id)
        .select_related("environment")
        .order_by("-created_at", "-id")[:RECENT]
    )
    incidents = list(Incident.objects.filter(service_id=service_id).order_by("-started_at", "-id")[:RECENT])
    audit = list(AuditEvent.objects.filter(service_id=service_id).order_by("-seq")[:RECENT])
    # ?fragment=live: the part live.js fetches again when an event concerns the service.
    live = request.GET.get("fragment") == "live"
    context = {
        "principal": request.principal,
        "service": service,
        "dora": None if live else _dora_row(service_id),
        "rows": rows,
        "releases": releases,
        "incidents": incidents,
        "open_incidents": state.open_total if state else 0,
        "audit": audit,
        "charts": _charts(service_id, environments),
        "recent": RECENT,
        "can_rollback": can(request.principal, "rollback"),
    }
    return render(request, "services/_live.html" if live else "services/detail.html", context)


# --- the environments ---


@require_safe
def environments(request):
    """`/environments/`: each environment in use, its placement settings, whether it is open for changes now
    and until when, how many services run there. `?fragment=rows`: the table's body, which live.js fetches again
    when an environment, a window or a freeze changes, and when the first status changes."""
    live = request.GET.get("fragment") == "rows"
    if request.principal is None:
        return HttpResponse("Sign in again.", status=401) if live else sign_in_first(request)
    rows = list(
        Environment.objects.filter(archived_at__isnull=True)
        .annotate(
            linked=Count("deployments", distinct=True),
            running=Count("deployments", filter=Q(deployments__current__isnull=False), distinct=True),
            promoting=Count("deployments", filter=Q(deployments__promoting__isnull=False), distinct=True),
        )
        .order_by(*PROMOTION_ORDER)
    )
    statuses = status.environment_status(rows)  # one Cedar batch for the page
    for row in rows:
        row.status = statuses[row.pk]
    context = {
        "principal": request.principal,
        "environments": rows,
        "refresh_in": status.refresh_in(statuses.values()),
        "live_match": _live_match([{"id": row.pk} for row in rows]),
    }
    return render(request, "overview/_environments_rows.html" if live else "overview/environments.html", context)


@require_safe
def environment_detail(request, environment_id: str):
    """`/environments/<id>/`: which release of which service runs there, a page of services at a time; whether
    it deploys for real (its connection) or simulates, and what the last drift check saw there."""
    if request.principal is None:
        return sign_in_first(request)
    environment = _environment_or_404(environment_id)
    live = request.GET.get("fragment") == "live"
    template = "overview/_environment_live.html" if live else "overview/environment.html"
    return render(request, template, _environment_context(request, environment))


def _environment_or_404(environment_id: str) -> Environment:
    environment = Environment.objects.filter(pk=environment_id).first()
    if environment is None:
        raise Http404("No such environment.")
    return environment


def _environment_context(request, environment: Environment, drift_error: str | None = None) -> dict:
    environment_id = environment.pk
    opened = status.environment_status([environment])[environment.pk]
    # Whether each current release superseded another (what "Roll back…" restores), in the page's one query.
    deployments = (
        DeploymentState.objects.filter(environment_id=environment_id)
        .select_related("service", "current", "latest", "promoting")
        .annotate(rolls_back=Exists(Release.objects.filter(superseded_by_id=OuterRef("current_id"))))
    )
    cursor = request.GET.get("cursor", "")
    page, _ = ENVIRONMENT_ORDER.page_from(deployments, ENVIRONMENT_PAGE_SIZE, cursor)
    context = {
        "principal": request.principal,
        "environment": environment,
        "deployments": page.rows,
        "cursor": cursor,  # the live fragment reads this page again
        "next": page.next_cursor(),
        "previous": page.previous_cursor(),
        "statuses": ReleaseStatus,
        "open_status": opened,
        "live_match": _live_match([{"id": environment.pk}]),
        "can_rollback": can(request.principal, "rollback"),
        "connection": connections.get(environment.connection),
        "drift": drift.report(environment),
        # Why a check would be refused as things stand (the domain's words: it simulates), else None.
        "drift_refusal": _drift_refusal(environment),
        "can_check_drift": can(request.principal, "drift.check"),
        "drift_error": drift_error,
    }
    return context


def _drift_refusal(environment: Environment) -> str | None:
    try:
        drift.live_adapter(environment)
    except Conflict as refusal:
        return str(refusal)
    return None


@require_POST
def environment_drift_check(request, environment_id: str):
    """POST `/environments/<id>/drift/` ("Check now"; CSRF; the deployer role, checked here whatever the page
    showed): `releases.drift.check`, then back to the environment's drift. Its refusal (409: the environment
    simulates, or names a connection no longer configured) is shown on the environment's page."""
    if request.principal is None:
        return sign_in_first(request)
    if not can(request.principal, "drift.check"):
        return refused(request, "drift.check")
    environment = _environment_or_404(environment_id)
    try:
        drift.check(environment)
    except Conflict as refusal:
        context = _environment_context(request, environment, drift_error=str(refusal))
        return render(request, "overview/environment.html", context, status=409)
    return redirect(f"{reverse('overview:environment', args=[environment.pk])}#drift")


# --- the DORA metrics ---

FIGURE_TITLES = {
    "deploymentFrequency": "Deployment frequency",
    "leadTimeForChanges": "Lead time for changes",
    "changeFailureRate": "Change failure rate",
    "failedDeploymentRecoveryTime": "Failed deployment recovery time",
    "reworkRate": "Rework rate",
}
LEVEL_BADGES = {"elite": "succeeded", "high": "Promoting", "medium": "medium", "low": "failed"}  # base.css's colours


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


def _seconds(value: int | None) -> str:
    return "—" if value is None else _duration(value)


def _figure_tiles(figures: dora.Figures) -> list[dict]:
    """Each figure as a tile: its value, what it is of, its DORA 2024 level, and its drill-down on this page."""
    f, levels = figures.figures, figures.tier["byMetric"]
    lead, rate, recovery, rework = (
        f["leadTimeForChanges"],
        f["changeFailureRate"],
        f["failedDeploymentRecoveryTime"],
        f["reworkRate"],
    )
    frequency = f["deploymentFrequency"]
    from_commit = lead["measuredFrom"]["committedAt"]
    shown = {
        "deploymentFrequency": (f"{frequency['perDay']:g} a day", f"{frequency['count']} deployments"),
        "leadTimeForChanges": (
            _seconds(lead["median"]),
            f"median; p90 {_seconds(lead['p90'])}; {lead['count']} changes, {from_commit} timed from their commit, "
            f"{lead['count'] - from_commit} from their first release",
        ),
        "changeFailureRate": (_percent(rate["rate"]), f"{rate['failed']} of {rate['total']} deployments failed"),
        "failedDeploymentRecoveryTime": (
            _seconds(recovery["median"]),
            f"median; {recovery['count']} recovered, {recovery['unrecovered']} not yet",
        ),
        "reworkRate": (_percent(rework["rate"]), f"{rework['count']} of {rework['total']} deployments were rework"),
    }
    counts = {metric: f[metric].get("count", f[metric].get("failed")) for metric in dora.METRICS}
    return [
        {
            "metric": metric,
            "title": FIGURE_TITLES[metric],
            "value": value,
            "detail": detail,
            "count": counts[metric],
            "level": levels.get(metric),
            "badge": LEVEL_BADGES.get(levels.get(metric)),
            "link": drill_link(figures, metric, path="/metrics/"),
        }
        for metric, (value, detail) in shown.items()
    ]


def _tier(figures: dora.Figures) -> dict:
    return {**figures.tier, "badge": LEVEL_BADGES.get(figures.tier["level"])}


def _dora_row(service_id: str) -> dict:
    """A service's figures in production over the last 30 days, for the row on its page."""
    figures = dora.measure(dora.window(service_id=service_id))
    return {"tiles": _figure_tiles(figures), "tier": _tier(figures), "days": dora.DEFAULT_DAYS}


@require_safe
def dora_metrics(request):
    """`/metrics/`: the DORA metrics (overview.dora, docs/metrics.md) of the window the filters ask for (by default
    every service in production over the last 30 days), each figure linking to its deployments (`?drill=`), which
    are then listed below. The REST endpoint's parameters and rules (overview.api.DoraQuery), an empty form field
    being no value."""
    if request.principal is None:
        return sign_in_first(request)
    takes = tuple(DoraQuery().fields)
    values = {name: request.GET.get(name, "").strip() for name in takes}
    errors = params.refusals(request.GET, takes, "this page", blank=True)
    query = DoraQuery(data={name: value for name, value in values.items() if value})
    figures = None
    if not errors and query.is_valid():
        asked = query.validated_data
        try:
            window = dora.window(asked.get("serviceId"), asked.get("envId"), asked.get("since"), asked.get("until"))
            figures = dora.measure(window)
        except ValidationError as error:
            errors = error.message_dict
    elif not errors:
        errors = {name: [str(m) for m in messages] for name, messages in query.errors.items()}
    drill = values["drill"] if figures is not None else ""
    context = {
        "principal": request.principal,
        "values": values,
        "errors": errors,
        "environments": list(Environment.objects.order_by(*PROMOTION_ORDER).values("id", "name")),
        "figures": figures.as_json() if figures else None,
        "tiles": _figure_tiles(figures) if figures else [],
        "tier": _tier(figures) if figures else None,
        "drill": drill,
        "drill_title": FIGURE_TITLES.get(drill, ""),
        "deployments": [d.as_json() for d in figures.drill(drill)] if drill else [],
    }
    return render(request, "metrics/dora.html", context, status=400 if errors else 200)
