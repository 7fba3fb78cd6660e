"""Whether environments are open for changes now, and until when (docs/pages.md, "Open or closed").

What the dashboard shows per environment: "open · closes 17:00 Europe/Berlin", "closed · opens Mon 09:00
Europe/Berlin", "frozen until Thu 08:00 UTC". Only what time decides counts here, the environment's change
windows and the freezes on it, as the gate asks them (`policies.gate`); a service's incidents, promotion order
and operators' policies are a deploy's own, said on its confirmation.

One page, one Cedar batch: every environment's gates at now and at every instant its state could change
(each window's boundaries, each freeze's start and end), asked in one `is_authorized_batch`, in two queries
(the windows named, the freezes not yet ended). The next change is the first of those instants whose answer
differs from now's.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from controlplane.identity.context import current_principal
from controlplane.timestamps import rfc3339
from policies import clock, engine, gate
from services import policy_refs
from services.models import ChangeWindow, Environment, Freeze

WEEK = timedelta(days=6)


def local_time(instant: datetime, zone: str, at: datetime | None = None) -> str:
    """`instant` as read in `zone`, relative to `at`: "17:00 Europe/Berlin" the same local day, "Mon 09:00
    Europe/Berlin" within the week, "2026-12-24 09:00 Europe/Berlin" beyond."""
    tz = UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
    local = instant.astimezone(tz)
    today = (at or timezone.now()).astimezone(tz).date()
    if local.date() == today:
        day = ""
    elif today < local.date() <= today + WEEK:
        day = f"{local:%a} "
    else:
        day = f"{local:%Y-%m-%d} "
    return f"{day}{local:%H:%M} {zone}"


@dataclass(frozen=True)
class State:
    frozen: bool  # a freeze runs
    open: bool  # no freeze runs, and a window is open (or none is named)
    zone: str = "UTC"  # the zone of the window open (or the first one named), for wording its times


@dataclass(frozen=True)
class EnvironmentStatus:
    environment_id: str
    now: State
    at: datetime
    changes_at: datetime | None  # when `now` next changes (None: not within the windows' horizon)
    then: State | None  # what it changes to
    last_zone: str  # the zone of the window open last before the change (an open one closes in its own time)
    frozen_until: datetime | None  # while frozen: when no freeze runs any more

    @property
    def open(self) -> bool:
        return self.now.open

    @property
    def state(self) -> str:
        """ "open", "closed" or "frozen"."""
        return "frozen" if self.now.frozen else "open" if self.now.open else "closed"

    @property
    def label(self) -> str:
        """In a few words, as the dashboard says it."""
        if self.now.frozen:
            if self.frozen_until is None:
                return "frozen"
            return f"frozen until {local_time(self.frozen_until, 'UTC', self.at)}"
        if self.changes_at is None or self.then is None:
            return "open" if self.now.open else "closed"
        if self.now.open:
            if self.then.frozen:
                return f"open · frozen from {local_time(self.changes_at, 'UTC', self.at)}"
            return f"open · closes {local_time(self.changes_at, self.last_zone, self.at)}"
        return f"closed · opens {local_time(self.changes_at, self.then.zone, self.at)}"

    @property
    def refresh_in(self) -> int | None:
        """Seconds from `at` until the label changes (what a page waits before asking again)."""
        return None if self.changes_at is None else seconds_until(self.changes_at, self.at)

    def as_json(self) -> dict:
        return {
            "envId": self.environment_id,
            "open": self.now.open,
            "frozen": self.now.frozen,
            "changesAt": rfc3339(self.changes_at),
            "label": self.label,
        }


def _situation(environment: Environment, windows: dict[str, ChangeWindow], freezes: list[Freeze]) -> gate.Situation:
    """The facts of an environment's calendar alone: its window refs and its freezes (no service, no release)."""
    refs = [r for r in policy_refs.parse_all(environment.policy_refs) if r.kind == "change-window"]
    return gate.Situation(
        action="deploy",
        principal=current_principal(),
        environment=environment,
        service_id="",
        release_id="",
        refs=refs,
        windows=[(r.text, windows[r.window]) for r in refs if r.window in windows],
        freezes=[f for f in freezes if environment.pk in f.env_ids],
        highest_severity="",
        highest_incident="",
        source_environment="",
        source_active_since=None,
    )


def _instants(s: gate.Situation, at: datetime) -> list[datetime]:
    """Now, and every later instant at which a window or a freeze of `s` can change the answer."""
    instants = {at}
    for _, window in s.windows:
        instants.update(clock.boundaries(window, at))
    for freeze in s.freezes:
        instants.update(t for t in (freeze.starts_at, freeze.ends_at) if t > at)
    return sorted(instants)


def refresh_in(statuses) -> int | None:
    """Seconds until the first of `statuses` changes (what a page showing them all waits before asking again)."""
    return min((s.refresh_in for s in statuses if s.refresh_in is not None), default=None)


def first_change(statuses) -> datetime | None:
    """When the first of `statuses` changes (None: none within the windows' horizon)."""
    return min((s.changes_at for s in statuses if s.changes_at is not None), default=None)


def seconds_until(changes_at: datetime, at: datetime) -> int:
    """What a page rendered at `at` waits before asking again for what changes at `changes_at`: a second past it."""
    return max(0, int((changes_at - at).total_seconds()) + 1)


def environment_status(environments, at: datetime | None = None) -> dict[str, EnvironmentStatus]:
    """Each environment's status at `at` (now by default), by id: two queries and one Cedar batch in all."""
    at = at or timezone.now()
    environments = list(environments)
    names = {r.window for e in environments for r in policy_refs.parse_all(e.policy_refs) if r.kind == "change-window"}
    windows = {w.name: w for w in ChangeWindow.objects.filter(name__in=names)} if names else {}
    freezes = list(Freeze.objects.filter(ends_at__gt=at)) if environments else []

    asked: list[tuple[dict, bool]] = []
    plans = []  # per environment: its situation, and per instant the slice of `asked` holding its gates
    entities = {}
    for environment in environments:
        s = _situation(environment, windows, freezes)
        for entity in gate._entities(s):
            entities[(entity["uid"]["type"], entity["uid"]["id"])] = entity
        slices = []
        for t in _instants(s, at):
            gates = gate._gates(s, t)
            slices.append((t, [name for name, _ in gates], len(asked)))
            asked.extend((request, True) for _, request in gates)
        plans.append((s, slices))
    outcomes = engine.book().ask(asked, list(entities.values())) if asked else []

    statuses = {}
    for s, slices in plans:
        states = [(t, _state(s, names, outcomes[start : start + len(names)])) for t, names, start in slices]
        now = states[0][1]
        changes = (i for i, (_, state) in enumerate(states) if (state.open, state.frozen) != (now.open, now.frozen))
        change = next(changes, None)
        frozen_until = next((t for t, state in states[1:] if not state.frozen), None) if now.frozen else None
        statuses[s.environment.pk] = EnvironmentStatus(
            environment_id=s.environment.pk,
            now=now,
            at=at,
            changes_at=states[change][0] if change is not None else None,
            then=states[change][1] if change is not None else None,
            last_zone=states[change - 1][1].zone if change is not None else now.zone,
            frozen_until=frozen_until,
        )
    return statuses


def _state(s: gate.Situation, names: list[str], outcomes: list[engine.Outcome]) -> State:
    """What Cedar answered for an environment's gates at one instant: frozen, open, and which window's zone."""
    by_name = dict(zip(names, outcomes, strict=True))
    frozen = any(not o.allowed for name, o in by_name.items() if name.startswith("freeze:"))
    open_windows = [w for ref, w in s.windows if by_name[ref].allowed]
    windows_open = bool(open_windows) or not s.windows
    zone = (open_windows or [w for _, w in s.windows] or [None])[0]
    return State(frozen=frozen, open=windows_open and not frozen, zone=zone.timezone if zone else "UTC")
