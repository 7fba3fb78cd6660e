"""The change failure rate: of the workflow runs that finished, the share that failed. One definition for the
dashboard's tile (7 days) and a service page's chart (per day) and total (docs/pages.md)."""

from django.db.models import Count, Q

from releases.models import RunState

FAILED = Q(state=RunState.FAILED)
FINISHED = Q(state__in=[RunState.SUCCEEDED, RunState.FAILED])  # a Running run has no outcome yet


def failure_counts(among: Q | None = None) -> dict:
    """`failed` and `finished` as aggregates over workflow runs (of those `among` selects), for one query's
    `aggregate()` or `annotate()`."""
    among = among or Q()
    return {"failed": Count("pk", filter=among & FAILED), "finished": Count("pk", filter=among & FINISHED)}


def change_failure_rate(failed: int, finished: int) -> int | None:
    """Failed runs as a whole percentage of finished ones; None when none finished (no rate, not 0%)."""
    return round(100 * failed / finished) if finished else None
