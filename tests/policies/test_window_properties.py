"""The Cedar decision against a plain-Python oracle, over random instants (2000-2040, half of them near a
window's boundary), zones and windows.

The oracle is written apart from the engine: it reads the wall clock at the instant (zoneinfo) and asks
whether that reading falls in one of the window's openings, each opening being a stretch of wall-clock time
that starts on one of the window's days at `start` and ends at `end` the same day (or the next, when `end`
is not after `start`; "24:00" is the next midnight). No weekday arithmetic, no minutes of the day.
"""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import gate
from services.models import ChangeWindow, Environment
from tests.conftest import examples

ZONES = [
    "UTC",
    "Europe/Berlin",  # DST, +01/+02
    "America/New_York",  # DST, -05/-04
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45/+13:45
    "Australia/Lord_Howe",  # a DST change of half an hour
    "Australia/Adelaide",  # +09:30/+10:30
    "America/St_Johns",  # -03:30/-02:30
    "Asia/Tehran",  # +03:30, DST until 2022
    "Pacific/Kiritimati",  # +14
    "America/Santiago",  # DST in the southern summer
    "Africa/Casablanca",  # its hour moves for Ramadan
]
MINUTE = timedelta(minutes=1)
_names = itertools.count(1)


def wall(day: date, hhmm: str) -> datetime:
    """A naive wall-clock time: "24:00" is the next day's midnight."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime.combine(day, time()) + timedelta(hours=hours, minutes=minutes)


def openings(days: list[int], start: str, end: str, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The openings that begin on the days from `first` to `last`: (opens, closes) in wall-clock time."""
    stretches = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        if day.isoweekday() in days:
            opens, closes = wall(day, start), wall(day, end)
            stretches.append((opens, closes if closes > opens else closes + timedelta(days=1)))
    return stretches


def reading(timezone: str, at: datetime) -> datetime:
    """What a wall clock in `timezone` reads at `at`, to the minute."""
    return at.astimezone(ZoneInfo(timezone)).replace(tzinfo=None, second=0, microsecond=0)


def oracle(timezone: str, days: list[int], start: str, end: str, at: datetime) -> bool:
    """Open at `at`: the wall clock there reads a time inside an opening that began yesterday or today."""
    now = reading(timezone, at)
    stretches = openings(days, start, end, now.date() - timedelta(days=1), now.date())
    return any(opens <= now < closes for opens, closes in stretches)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def windows(draw):
    days = sorted(draw(st.sets(st.integers(1, 7), min_size=1)))
    # Minutes on the quarter hour half the time (where the DST and offset changes fall), any minute otherwise.
    minute = st.one_of(st.integers(0, 95).map(lambda q: q * 15), st.integers(0, 1439))
    start = draw(minute)
    end = draw(st.one_of(minute, st.just(1440)).filter(lambda e: e != start))
    return {"timezone": draw(st.sampled_from(ZONES)), "days": days, "start": hhmm(start), "end": hhmm(end)}


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC))


@st.composite
def cases(draw):
    """A window and an instant: anywhere in 2000-2040 half the time, otherwise within two minutes of one of the
    window's starts or ends (in its zone, either side of a fold), where a mistake at the boundary shows."""
    w = draw(windows())
    if draw(st.booleans()):
        return w, draw(instants)
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 30)))
    near = wall(day, draw(st.sampled_from([w["start"], w["end"]])))
    near += timedelta(minutes=draw(st.integers(-2, 2)), seconds=draw(st.sampled_from([0, 0, 0, 1, 59])))
    zone = ZoneInfo(w["timezone"])
    return w, near.replace(tzinfo=zone, fold=draw(st.integers(0, 1))).astimezone(UTC)


def asked(w: dict, at: datetime) -> tuple[gate.Decision, gate.WindowState]:
    """The window saved, an environment naming it, the gate's decision and the window's state at `at`; all of
    it rolled back afterwards (one example's data never meets another's)."""
    with transaction.atomic():
        window = ChangeWindow(name=f"prop-{next(_names)}", **w)
        window.save()
        env = Environment(name="qa", policy_refs=[f"policy:change-window:{window.name}"])
        env.save()
        s = gate.situation("deploy", env, "", at=at)
        decision = gate.decide(s, at=at)
        [state] = gate.window_states(s, at)
        transaction.set_rollback(True)
    return decision, state


def minutes_between(start: datetime, end: datetime):
    """Each whole minute from the first at or after `start`, before `end`."""
    t = start.replace(second=0, microsecond=0)
    t = t if t == start else t + MINUTE
    while t < end:
        yield t
        t += MINUTE


def depth(full: int):
    """Each example saves a window and asks Cedar some dozens of questions: a costly property, its own depth."""
    return settings(
        max_examples=examples(full), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    )


@pytest.mark.django_db
@depth(300)
@given(case=cases())
def test_the_decision_is_the_oracles(case):
    w, at = case
    decision, state = asked(w, at)
    expected = oracle(**w, at=at)
    assert decision.allowed is expected, (w, at.isoformat(), at.astimezone(ZoneInfo(w["timezone"])).isoformat())
    assert state.open is expected
    if not expected:
        # Refused: nextAllowedAt is the window's next opening, and the oracle agrees it opens there.
        assert decision.next_allowed_at == state.next_change_at
        assert oracle(**w, at=decision.next_allowed_at)


@pytest.mark.django_db
@depth(150)
@given(case=cases())
def test_next_change_at_is_the_first_minute_the_oracle_flips(case):
    w, at = case
    _, state = asked(w, at)
    now = oracle(**w, at=at)
    if state.next_change_at is None:  # open around the clock: nothing changes within a week
        assert all(oracle(**w, at=t) == now for t in minutes_between(at, at + timedelta(days=8)))
        return
    change = state.next_change_at
    assert change > at
    assert oracle(**w, at=change) is not now, (w, at.isoformat(), change.isoformat())
    # not a minute before: the oracle's state holds at every whole minute from `at` up to the change
    first, last = reading(w["timezone"], at).date(), reading(w["timezone"], change).date()
    stretches = openings(w["days"], w["start"], w["end"], first - timedelta(days=1), last)
    for t in minutes_between(at, change):
        wall_now = reading(w["timezone"], t)
        assert any(o <= wall_now < c for o, c in stretches) is now, (w, at.isoformat(), t.isoformat())


def test_the_oracle_itself_on_known_instants():
    """The oracle is a test's own reading of the rules: checked where the answer is known by hand."""
    weekday = {"timezone": "Europe/Berlin", "days": [1, 2, 3, 4, 5], "start": "09:00", "end": "17:00"}
    assert oracle(**weekday, at=datetime(2026, 3, 30, 7, 0, tzinfo=UTC))  # Mon 09:00 CEST
    assert not oracle(**weekday, at=datetime(2026, 3, 30, 15, 0, tzinfo=UTC))  # Mon 17:00
    friday_night = {"timezone": "UTC", "days": [5], "start": "22:00", "end": "02:00"}
    assert oracle(**friday_night, at=datetime(2026, 12, 5, 1, 0, tzinfo=UTC))  # Sat 01:00
    assert not oracle(**friday_night, at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    sunday = {"timezone": "UTC", "days": [7], "start": "18:00", "end": "24:00"}
    assert oracle(**sunday, at=datetime(2026, 12, 6, 23, 59, tzinfo=UTC))
    assert not oracle(**sunday, at=datetime(2026, 12, 7, 0, 0, tzinfo=UTC))
