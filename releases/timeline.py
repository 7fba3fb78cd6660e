"""A release's workflow timeline: its own runs and the promotions made from it, in time order. One
definition for REST (`/api/releases/{id}/timeline/`), GraphQL (`Release.timeline`, `Release.runs`) and the
release page (and its live fragment)."""

from django.db.models import Prefetch, Q

from releases.models import Release, RunApproval, RunLogEntry, WorkflowRun

ORDER = ("started_at", "id")
# A run's log, in order: what every door shows with a run.
LOGS = Prefetch("logs", queryset=RunLogEntry.objects.order_by("ts", "id"))
# Its approvals and rejections, in order.
APPROVALS = Prefetch("approvals", queryset=RunApproval.objects.order_by("at", "id"))


def runs(*releases: Release, with_logs: bool = False):
    """The runs on the timelines of `releases` (one query; their logs in one more, `with_logs`)."""
    ids = [release.pk for release in releases]
    found = WorkflowRun.objects.filter(Q(release_id__in=ids) | Q(source_release_id__in=ids)).order_by(*ORDER)
    return found.prefetch_related(LOGS) if with_logs else found


def by_release(releases) -> dict[str, list[WorkflowRun]]:
    """Each release's timeline, for many releases at once: a promotion is on its source's and its own."""
    ids = {release.pk for release in releases}
    result: dict[str, list[WorkflowRun]] = {}
    for run in runs(*releases):
        for owner in {run.release_id, run.source_release_id} & ids:
            result.setdefault(owner, []).append(run)
    return result
