"""Runs whose worker died: no progress for a set time. The worker fails them, explained, on start and
periodically, so a release is never left Promoting forever."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from releases.models import RunState, WorkflowRun
from releases.workflows import finish


def stale_runs(now=None):
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CONTROLPLANE_WORKFLOWS["staleAfterSeconds"])
    return (
        WorkflowRun.objects.filter(state=RunState.RUNNING)
        .annotate(progress=Coalesce(Max("logs__ts"), "started_at"))
        .filter(Q(progress__lt=cutoff))
        .select_related("release")
    )


def recover(now=None) -> list[str]:
    stale = settings.CONTROLPLANE_WORKFLOWS["staleAfterSeconds"]
    recovered = []
    for run in stale_runs(now):
        reason = f"no progress for over {stale:g}s: the worker running it stopped; marked failed by recovery"
        if finish(run, succeeded=False, reason=reason):
            recovered.append(run.id)
    return recovered
