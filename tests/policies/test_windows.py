"""Change windows, in their own time zones, at frozen instants: DST changes in Europe/Berlin and
America/New_York, the boundaries (start open, end closed), midnight, "24:00", half- and 45-minute offsets,
Sunday, several windows on one environment, nextAllowedAt and each window's nextChangeAt."""

import pytest

from controlplane.timestamps import rfc3339
from services.models import ChangeWindow
from tests.conftest import refused
from tests.policies.conftest import decide_at, states_at

BERLIN = {"timezone": "Europe/Berlin"}
NEW_YORK = {"timezone": "America/New_York"}


def allowed(when, environment) -> bool:
    return decide_at(when, environment).allowed


# --- Europe/Berlin, Mon-Fri 09:00-17:00, around both DST changes of 2026 ---
# Summer time from Sun 29 March (UTC+2): Monday 30 March 09:00 is 07:00Z. Winter time from Sun 25 October
# (UTC+1): Monday 26 October 09:00 is 08:00Z.


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-03-30T06:59:00Z", False),  # 08:59 CEST
        ("2026-03-30T07:00:00Z", True),  # 09:00
        ("2026-03-30T14:59:00Z", True),  # 16:59
        ("2026-03-30T15:00:00Z", False),  # 17:00: the end is closed
        ("2026-03-30T15:59:59Z", False),  # 17:59:59
        ("2026-10-26T07:59:00Z", False),  # 08:59 CET
        ("2026-10-26T08:00:00Z", True),  # 09:00
        ("2026-10-26T15:59:00Z", True),  # 16:59
        ("2026-10-26T16:00:00Z", False),  # 17:00
        ("2026-10-26T07:00:00Z", False),  # 08:00 CET: the summer's 09:00 in UTC, closed in winter
    ],
)
def test_berlin_weekday_window_on_the_mondays_after_both_dst_changes(gated, when, is_open):
    assert allowed(when, gated(BERLIN)) is is_open


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-03-09T12:59:00Z", False),  # 08:59 EDT (UTC-4)
        ("2026-03-09T13:00:00Z", True),  # 09:00
        ("2026-03-09T20:59:00Z", True),  # 16:59
        ("2026-03-09T21:00:00Z", False),  # 17:00
        ("2026-11-02T13:59:00Z", False),  # 08:59 EST (UTC-5)
        ("2026-11-02T14:00:00Z", True),  # 09:00
        ("2026-11-02T21:59:00Z", True),  # 16:59
        ("2026-11-02T22:00:00Z", False),  # 17:00
        ("2026-11-02T21:00:00Z", True),  # 16:00 EST: the summer's 17:00 in UTC, still open in winter
    ],
)
def test_new_york_weekday_window_on_the_mondays_after_both_dst_changes(gated, when, is_open):
    assert allowed(when, gated(NEW_YORK)) is is_open


@pytest.mark.parametrize(
    "when, opens",
    [
        # Sunday in Berlin, either side of the spring change: Monday 09:00 CEST
        ("2026-03-29T00:30:00Z", "2026-03-30T07:00:00Z"),  # 01:30 CET, before the change
        ("2026-03-29T12:00:00Z", "2026-03-30T07:00:00Z"),
        ("2026-03-27T16:00:00Z", "2026-03-30T07:00:00Z"),  # Friday 17:00 CET: over a weekend that changes
        ("2026-03-30T15:00:00Z", "2026-03-31T07:00:00Z"),  # Monday 17:00: Tuesday morning
        # the autumn change: Monday 09:00 CET, an hour later in UTC
        ("2026-10-25T00:30:00Z", "2026-10-26T08:00:00Z"),  # 02:30 CEST, the first of two
        ("2026-10-25T12:00:00Z", "2026-10-26T08:00:00Z"),
        ("2026-10-23T15:00:00Z", "2026-10-26T08:00:00Z"),  # Friday 17:00 CEST
    ],
)
def test_berlin_next_allowed_at_is_the_next_monday_0900_local_in_utc(gated, when, opens):
    decision = decide_at(when, gated(BERLIN))
    assert decision.as_json()["nextAllowedAt"] == opens
    assert decide_at(opens, gated(BERLIN)).allowed


@pytest.mark.parametrize(
    "when, opens",
    [
        ("2026-03-08T12:00:00Z", "2026-03-09T13:00:00Z"),  # Sunday, DST from 02:00 that night
        ("2026-03-06T22:00:00Z", "2026-03-09T13:00:00Z"),  # Friday 17:00 EST
        ("2026-11-01T12:00:00Z", "2026-11-02T14:00:00Z"),  # Sunday, standard time from 02:00 that night
        ("2026-10-30T21:00:00Z", "2026-11-02T14:00:00Z"),  # Friday 17:00 EDT
    ],
)
def test_new_york_next_allowed_at_across_the_dst_changes(gated, when, opens):
    assert decide_at(when, gated(NEW_YORK)).as_json()["nextAllowedAt"] == opens


def test_a_refusal_names_the_window_and_says_when_it_opens(window, make_environment):
    w = window(name="weekday")
    env = make_environment(policy_refs=["policy:change-window:weekday"])
    decision = decide_at("2026-12-06T12:00:00Z", env)  # a Sunday
    assert decision.as_json() == {
        "allowed": False,
        "deniedBy": [
            {"policy": "policy:change-window:weekday", "reason": f"outside weekday ({w.summary})"},
        ],
        "nextAllowedAt": "2026-12-07T08:00:00Z",
    }
    assert w.summary == "Mon\u2013Fri 09:00\u201317:00 Europe/Berlin"
    assert "2026-12-07T08:00:00Z" in decision.sentence


# --- across midnight, "24:00", Sunday ---


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-12-04T21:59:00Z", False),  # Fri 21:59
        ("2026-12-04T22:00:00Z", True),  # Fri 22:00
        ("2026-12-04T23:59:59Z", True),
        ("2026-12-05T00:00:00Z", True),  # Sat 00:00: the part after midnight belongs to Friday
        ("2026-12-05T01:00:00Z", True),  # Sat 01:00
        ("2026-12-05T01:59:00Z", True),
        ("2026-12-05T02:00:00Z", False),  # Sat 02:00: closed
        ("2026-12-05T22:00:00Z", False),  # Sat 22:00: Saturday is not a day of the window
        ("2026-12-04T01:00:00Z", False),  # Fri 01:00 belongs to Thursday
    ],
)
def test_a_window_across_midnight_belongs_to_the_day_it_starts_on(gated, when, is_open):
    env = gated({"timezone": "UTC", "days": [5], "start": "22:00", "end": "02:00"})
    assert allowed(when, env) is is_open


def test_across_midnight_the_next_opening_and_closing(gated):
    env = gated({"timezone": "UTC", "days": [5], "start": "22:00", "end": "02:00"})
    assert decide_at("2026-12-05T02:00:00Z", env).as_json()["nextAllowedAt"] == "2026-12-11T22:00:00Z"
    [state] = states_at("2026-12-05T01:00:00Z", env)
    assert state.open and rfc3339(state.next_change_at) == "2026-12-05T02:00:00Z"


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-12-06T16:59:00Z", False),  # Sun 17:59 in Berlin
        ("2026-12-06T17:00:00Z", True),  # Sun 18:00
        ("2026-12-06T22:59:59Z", True),  # Sun 23:59:59
        ("2026-12-06T23:00:00Z", False),  # Mon 00:00: "24:00" is the end of Sunday
    ],
)
def test_an_end_of_2400_runs_to_midnight(gated, when, is_open):
    env = gated({"timezone": "Europe/Berlin", "days": [7], "start": "18:00", "end": "24:00"})
    assert allowed(when, env) is is_open


def test_a_whole_sunday_is_open_all_sunday_and_only_sunday(gated):
    # ISO weekday 7 is Sunday; 00:00-24:00 is the whole day.
    env = gated({"timezone": "UTC", "days": [7], "start": "00:00", "end": "24:00"})
    assert not allowed("2026-12-05T23:59:59Z", env)  # Saturday
    assert allowed("2026-12-06T00:00:00Z", env)
    assert allowed("2026-12-06T23:59:59Z", env)
    assert not allowed("2026-12-07T00:00:00Z", env)  # Monday
    [state] = states_at("2026-12-06T12:00:00Z", env)
    assert state.open and rfc3339(state.next_change_at) == "2026-12-07T00:00:00Z"
    assert decide_at("2026-12-07T00:00:00Z", env).as_json()["nextAllowedAt"] == "2026-12-13T00:00:00Z"


# --- offsets of half and three quarters of an hour ---


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-06-01T03:29:00Z", False),  # Mon 08:59 IST (UTC+05:30)
        ("2026-06-01T03:30:00Z", True),  # 09:00
        ("2026-06-01T11:29:00Z", True),  # 16:59
        ("2026-06-01T11:30:00Z", False),  # 17:00
    ],
)
def test_asia_kolkata(gated, when, is_open):
    assert allowed(when, gated({"timezone": "Asia/Kolkata"})) is is_open


@pytest.mark.parametrize(
    "when, is_open",
    [
        # January: Chatham's summer time, UTC+13:45. Monday 09:00 there is Sunday 19:15Z.
        ("2027-01-03T19:14:00Z", False),
        ("2027-01-03T19:15:00Z", True),
        ("2027-01-04T03:14:00Z", True),  # 16:59
        ("2027-01-04T03:15:00Z", False),  # 17:00
        # July: standard time, UTC+12:45. Monday 09:00 is Sunday 20:15Z.
        ("2026-07-05T19:15:00Z", False),
        ("2026-07-05T20:15:00Z", True),
    ],
)
def test_pacific_chatham_where_monday_starts_on_a_utc_sunday(gated, when, is_open):
    assert allowed(when, gated({"timezone": "Pacific/Chatham"})) is is_open


def test_pacific_chatham_next_allowed_at(gated):
    env = gated({"timezone": "Pacific/Chatham"})
    # Saturday 12:00Z is Sunday 01:45 in Chatham: it opens on Chatham's Monday, a UTC Sunday.
    assert decide_at("2027-01-02T12:00:00Z", env).as_json()["nextAllowedAt"] == "2027-01-03T19:15:00Z"


@pytest.mark.parametrize(
    "when, is_open",
    [
        ("2026-12-06T10:30:00Z", True),  # Sunday
        ("2026-12-05T10:30:00Z", False),  # Saturday
        ("2026-12-07T10:30:00Z", False),  # Monday
    ],
)
def test_iso_weekday_7_is_sunday(gated, when, is_open):
    assert allowed(when, gated({"timezone": "UTC", "days": [7], "start": "10:00", "end": "11:00"})) is is_open


# --- an invalid zone is refused on save ---


@pytest.mark.parametrize("zone", ["Europe/Berlinn", "Mars/Olympus_Mons", "", "../etc/passwd", "europe/berlin"])
def test_a_window_whose_zone_is_not_an_iana_name_is_refused_on_save(db, zone):
    w = ChangeWindow(name="bad-zone", timezone=zone, days=[1], start="09:00", end="17:00")
    refused(w.save, "timezone", "is not an IANA time zone name")
    assert not ChangeWindow.objects.filter(name="bad-zone").exists()


# --- several windows on one environment: open while any is open ---


def test_several_windows_are_open_while_any_is_open(window, make_environment):
    morning = window(name="berlin-morning", timezone="Europe/Berlin", days=[1], start="09:00", end="12:00")
    evening = window(name="ny-morning", timezone="America/New_York", days=[1], start="09:00", end="12:00")
    env = make_environment(policy_refs=["policy:change-window:berlin-morning", "policy:change-window:ny-morning"])
    # Monday 7 December 2026: Berlin 09:00-12:00 is 08:00-11:00Z; New York's is 14:00-17:00Z.
    assert allowed("2026-12-07T08:00:00Z", env)
    assert allowed("2026-12-07T14:00:00Z", env)
    closed = decide_at("2026-12-07T12:00:00Z", env)  # between the two
    assert closed.as_json() == {
        "allowed": False,
        "deniedBy": [
            {"policy": "policy:change-window:berlin-morning", "reason": f"outside berlin-morning ({morning.summary})"},
            {"policy": "policy:change-window:ny-morning", "reason": f"outside ny-morning ({evening.summary})"},
        ],
        "nextAllowedAt": "2026-12-07T14:00:00Z",  # the first of them to open
    }
    # after both: the next Monday's Berlin morning
    assert decide_at("2026-12-07T17:00:00Z", env).as_json()["nextAllowedAt"] == "2026-12-14T08:00:00Z"


def test_window_states_say_each_windows_next_change(window, make_environment):
    window(name="berlin-morning", timezone="Europe/Berlin", days=[1], start="09:00", end="12:00")
    window(name="ny-morning", timezone="America/New_York", days=[1], start="09:00", end="12:00")
    env = make_environment(policy_refs=["policy:change-window:berlin-morning", "policy:change-window:ny-morning"])
    decision = decide_at("2026-12-07T09:00:00Z", env, explain=True)
    assert decision.allowed
    assert [(w.window.name, w.open, rfc3339(w.next_change_at)) for w in decision.windows] == [
        ("berlin-morning", True, "2026-12-07T11:00:00Z"),  # closes at 12:00 Berlin
        ("ny-morning", False, "2026-12-07T14:00:00Z"),  # opens at 09:00 New York
    ]
    assert decision.windows[0].as_json()["nextChangeAt"] == "2026-12-07T11:00:00Z"


@pytest.mark.parametrize(
    "when, is_open, change",
    [
        ("2026-03-27T15:59:00Z", True, "2026-03-27T16:00:00Z"),  # Friday 16:59 CET: closes at 17:00 CET
        ("2026-03-27T16:00:00Z", False, "2026-03-30T07:00:00Z"),  # opens Monday 09:00 CEST
        ("2026-03-30T07:00:00Z", True, "2026-03-30T15:00:00Z"),  # closes 17:00 CEST
        ("2026-10-25T01:30:00Z", False, "2026-10-26T08:00:00Z"),  # in the repeated hour: Monday 09:00 CET
    ],
)
def test_next_change_at_across_the_spring_change(gated, when, is_open, change):
    [state] = states_at(when, gated(BERLIN))
    assert (state.open, rfc3339(state.next_change_at)) == (is_open, change)


def test_a_window_whose_start_falls_in_the_spring_gap_opens_when_the_clocks_jump(gated):
    # Sunday 29 March 2026 in Berlin: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 never happens.
    env = gated({"timezone": "Europe/Berlin", "days": [7], "start": "02:30", "end": "04:00"})
    assert not allowed("2026-03-29T00:59:59Z", env)
    assert allowed("2026-03-29T01:00:00Z", env)  # 03:00 CEST, inside 02:30-04:00
    assert decide_at("2026-03-29T00:30:00Z", env).as_json()["nextAllowedAt"] == "2026-03-29T01:00:00Z"
