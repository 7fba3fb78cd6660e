"""`policies.status.environment_status`: whether environments are open for changes now and until when, as the
dashboard says it, for a whole page in one Cedar batch. Time stands still (time-machine)."""

from datetime import UTC, datetime, timedelta

import cedarpy
import pytest
import time_machine

from policies import status
from services.models import ChangeWindow, Environment, Freeze

MONDAY_EARLY = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)  # 04:30 in Berlin
MONDAY_NOON = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def window(db):
    def make(name, days=(1, 2, 3, 4, 5), start="09:00", end="17:00", zone="Europe/Berlin"):
        made = ChangeWindow(name=name, timezone=zone, days=list(days), start=start, end=end)
        made.save()
        return made

    return make


@pytest.fixture
def environment(make_environment):
    def make(*windows, name=None):
        refs = [f"policy:change-window:{w.name}" for w in windows]
        return make_environment(**({"name": name} if name else {}), policy_refs=refs)

    return make


def label(env: Environment, at: datetime) -> str:
    return status.environment_status([env], at)[env.pk].label


@pytest.mark.parametrize(
    "at, said",
    [
        (MONDAY_EARLY, "closed · opens 09:00 Europe/Berlin"),
        (SATURDAY, "closed · opens Mon 09:00 Europe/Berlin"),
        (MONDAY_NOON, "open · closes 17:00 Europe/Berlin"),
        (datetime(2026, 12, 7, 16, 0, tzinfo=UTC), "closed · opens Tue 09:00 Europe/Berlin"),  # 17:00 is closed
        (datetime(2026, 12, 4, 15, 59, tzinfo=UTC), "open · closes 17:00 Europe/Berlin"),
    ],
)
def test_a_weekday_window_open_or_closed_and_until_when(window, environment, at, said):
    assert label(environment(window("weekday")), at) == said


def test_when_it_changes_and_how_long_a_page_waits(window, environment):
    env = environment(window("weekday"))
    found = status.environment_status([env], MONDAY_EARLY)[env.pk]
    assert (found.open, found.state, found.changes_at) == (False, "closed", datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    assert found.refresh_in == 4 * 3600 + 30 * 60 + 1
    assert found.as_json() == {
        "envId": env.pk,
        "open": False,
        "frozen": False,
        "changesAt": "2026-12-07T08:00:00Z",
        "label": "closed · opens 09:00 Europe/Berlin",
    }


def test_without_a_window_or_freeze_it_is_open_and_never_changes(environment):
    found = status.environment_status([environment()], MONDAY_EARLY)
    (only,) = found.values()
    assert (only.label, only.changes_at, only.refresh_in) == ("open", None, None)


def test_across_midnight_in_another_zone(window, environment):
    night = window("night", days=[7], start="22:00", end="02:00", zone="Asia/Kolkata")  # Sunday night, +05:30
    env = environment(night)
    sunday_late = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # 22:30 Sunday in Kolkata
    assert label(env, sunday_late) == "open · closes Mon 02:00 Asia/Kolkata"
    assert label(env, sunday_late + timedelta(hours=4)) == "closed · opens Sun 22:00 Asia/Kolkata"


def test_several_windows_open_while_any_is_and_say_the_zone_of_the_one_that_opens(window, environment):
    berlin = window("weekday")
    new_york = window("evening", days=[1, 2, 3, 4, 5], start="11:00", end="14:00", zone="America/New_York")
    env = environment(berlin, new_york)
    # 16:30 in Berlin (10:30 in New York): open by Berlin's until 17:00 (16:00 UTC), then by New York's until 19:00.
    assert label(env, datetime(2026, 12, 7, 15, 30, tzinfo=UTC)) == "open · closes 14:00 America/New_York"
    assert label(env, datetime(2026, 12, 7, 20, 0, tzinfo=UTC)) == "closed · opens Tue 09:00 Europe/Berlin"


def test_a_freeze_closes_it_until_it_ends(window, environment):
    env = environment(window("weekday"))
    Freeze(
        title="Year end",
        starts_at=MONDAY_NOON - timedelta(hours=1),
        ends_at=MONDAY_NOON + timedelta(days=20),
        env_ids=[env.pk],
    ).save()
    found = status.environment_status([env], MONDAY_NOON)[env.pk]
    assert (found.state, found.label) == ("frozen", "frozen until 2026-12-27 11:00 UTC")


def test_a_freeze_to_come_is_when_an_open_window_closes(window, environment):
    env = environment(window("weekday"))
    Freeze(
        title="Release party",
        starts_at=MONDAY_NOON + timedelta(hours=1),
        ends_at=MONDAY_NOON + timedelta(hours=2),
        env_ids=[env.pk, environment().pk],
    ).save()
    assert label(env, MONDAY_NOON) == "open · frozen from 12:00 UTC"
    assert label(env, MONDAY_NOON + timedelta(minutes=90)) == "frozen until 13:00 UTC"


def test_a_freeze_elsewhere_or_ended_changes_nothing(window, environment):
    env, elsewhere = environment(), environment()
    for starts, ends in ((-3, -1), (-1, 2)):
        Freeze(
            title="x",
            starts_at=MONDAY_NOON + timedelta(hours=starts),
            ends_at=MONDAY_NOON + timedelta(hours=ends),
            env_ids=[elsewhere.pk] if ends > 0 else [env.pk],
        ).save()
    assert label(env, MONDAY_NOON) == "open"


def test_a_whole_page_is_one_cedar_batch_and_two_queries(window, environment, monkeypatch, django_assert_num_queries):
    weekday, night = window("weekday"), window("night", days=[6, 7], start="20:00", end="06:00", zone="UTC")
    environments = [environment(weekday), environment(night), environment(weekday, night), environment()]
    Freeze(title="f", starts_at=SATURDAY, ends_at=SATURDAY + timedelta(days=3), env_ids=[environments[0].pk]).save()
    batches = []
    real = cedarpy.is_authorized_batch
    monkeypatch.setattr(cedarpy, "is_authorized_batch", lambda *a, **k: batches.append(a) or real(*a, **k))
    with time_machine.travel(SATURDAY, tick=False), django_assert_num_queries(2):  # the windows, the freezes
        found = status.environment_status(environments)
    assert len(batches) == 1
    assert [found[e.pk].label for e in environments] == [
        "frozen until Tue 10:00 UTC",
        "closed · opens 20:00 UTC",
        "closed · opens 20:00 UTC",
        "open",
    ]
    assert status.refresh_in(found.values()) == 10 * 3600 + 1  # the first change: 20:00 UTC


def test_local_time_is_relative_to_now():
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert status.local_time(at + timedelta(hours=2), "Europe/Berlin", at) == "13:00 Europe/Berlin"
    assert status.local_time(at + timedelta(days=1), "Europe/Berlin", at) == "Tue 11:00 Europe/Berlin"
    assert status.local_time(at + timedelta(days=9), "UTC", at) == "2026-12-16 10:00 UTC"
