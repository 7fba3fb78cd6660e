"""How the release and run pages show a run: its duration, a log entry's meta."""

import json
from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def duration(run) -> str:
    """How long a run took (`1 min 5 s`, `3 s`), or has been running so far."""
    end: datetime = run.finished_at or timezone.now()
    seconds = max(0, int((end - run.started_at).total_seconds()))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min")) if n]
    return " ".join([*parts, f"{seconds} s"]) if seconds or not parts else " ".join(parts)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def last_log_id(run) -> int:
    """The id of the run's last log entry shown (0 when none): its live tail resumes after it."""
    entries = list(run.logs.all())  # prefetched
    return entries[-1].pk if entries else 0
