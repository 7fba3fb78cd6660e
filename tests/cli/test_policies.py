"""cpctl and the policy gate against a live server: a refusal's exit code, sentence and next opening (in UTC and
in the window's zone), break-glass on deploy and promote, and `cpctl policy explain`.

The demo's env-prod refs `policy:change-window:weekday` (Monday to Friday, 09:00 to 17:00 Europe/Berlin),
`policy:requires:env-staging` and `policy:incident-gate:critical`; rel-123 is Active in env-staging. The server
runs on the real clock, so a test that cares about the window asks about a fixed instant (`--at`) or reads the
instant the server decided on from the refusal's audit event."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.models import AuditEvent
from controlplane.timestamps import rfc3339
from releases.models import Release
from services.models import DASH, Freeze
from tests.cli.conftest import plain
from tests.cli.test_rollouts import confirmed_by, create

pytestmark = pytest.mark.usefixtures("shipped_gates")

WEEKDAY = f"Mon{DASH}Fri 09:00{DASH}17:00 Europe/Berlin"  # the demo window's summary


def freeze_prod() -> Freeze:
    """A freeze on env-prod from an hour ago to a whole minute at least two hours ahead."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return Freeze.objects.create(
        id="frz-launch",
        title="Launch week",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
        env_ids=["env-prod"],
        reason="the launch",
    )


def shown_at(instant: str, zone: str) -> str:
    """How a person reads `instant` in `zone` (worked out here with zoneinfo, not by cpctl's code)."""
    local = datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))
    return local.strftime("%a %Y-%m-%d %H:%M") + f" {zone}"


def last_denial() -> AuditEvent:
    return AuditEvent.objects.filter(action="policy.deny").order_by("-seq").first()


# --- a refusal (runs on the policies core alone) ---


def test_a_promotion_into_a_frozen_environment_exits_5_with_the_sentence_and_the_next_opening(server, cpctl):
    freeze = freeze_prod()

    refused = cpctl("promote", "rel-123", "--to", "env-prod", "--yes", url=server)

    assert refused.code == 5, refused.err
    error, *more = refused.err.splitlines()
    assert error.startswith("error: Refused by policy (")
    frozen = f"freeze:frz-launch: frozen by frz-launch (Launch week) until {rfc3339(freeze.ends_at)}"
    assert frozen in error
    # The instant the server decided on (the freeze's end, or the window's next opening after it), as recorded.
    denial = last_denial()
    opens = denial.metadata["nextAllowedAt"]
    assert f"It is next allowed at {opens}." in error
    assert more and more[0].startswith(f"next allowed: {shown_at(opens, 'UTC')}")
    assert "Traceback" not in refused.err and refused.out == ""
    assert not Release.objects.filter(environment_id="env-prod").exists()
    assert denial.subject_id == "rel-123" and denial.metadata["action"] == "promote"

    as_json = cpctl("promote", "rel-123", "--to", "env-prod", "--yes", "-o", "json", url=server)

    assert as_json.code == 5
    body = as_json.json()  # the 409's body, for a script to wait on
    assert body["decision"]["allowed"] is False
    assert {"policy": "freeze:frz-launch", "reason": frozen.removeprefix("freeze:frz-launch: ")} in body["decision"][
        "deniedBy"
    ]
    assert as_json.err.splitlines()[0] == f"error: {body['detail']}"


def test_a_refusal_no_time_lifts_says_so_and_shows_no_opening(server, cpctl):
    # Created in env-prod, not promoted there from env-staging: promotion order refuses it, whatever the hour.
    release_id = create(cpctl, server, env="env-prod")

    refused = cpctl("deploy", release_id, "--yes", url=server)

    assert refused.code == 5, refused.err
    assert refused.err.startswith("error: Refused by policy (")
    assert "policy:requires:env-staging: env-prod is reached only by promotion from a release Active in" in refused.err
    assert refused.err.rstrip().endswith("No time alone allows it.")
    assert len(refused.err.splitlines()) == 1  # no "next allowed" line: there is none
    assert Release.objects.get(pk=release_id).status == "Draft"


def test_break_glass_is_asked_about_in_the_confirmation(server, cpctl, terminal):
    freeze_prod()

    code, coloured = terminal(
        "promote", "rel-123", "--to", "env-prod", "--break-glass", "hotfix for the outage", url=server, answer="n"
    )

    assert code == 2
    assert "Promote rel-123 to env-prod, breaking glass? [y/N]" in plain(coloured)
    assert not Release.objects.filter(environment_id="env-prod").exists()


# --- with the policy endpoint (GET /api/environments/{id}/policy/) ---


def test_the_next_opening_is_also_shown_in_the_windows_zone(server, cpctl):
    freeze_prod()

    refused = cpctl("promote", "rel-123", "--to", "env-prod", "--yes", url=server)

    assert refused.code == 5, refused.err
    opens = last_denial().metadata["nextAllowedAt"]
    utc, berlin = shown_at(opens, "UTC"), shown_at(opens, "Europe/Berlin")
    assert refused.err.splitlines()[1] == f"next allowed: {utc} · {berlin}"


def rows(output: str) -> list[list[str]]:
    """A piped table's rows, each split into its columns (two spaces or more between them)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def test_explain_says_why_not_and_until_when_in_utc_and_in_the_windows_zone(server, cpctl):
    saturday = "2026-12-12T12:00:00Z"

    explained = cpctl(
        "policy", "explain", "env-prod", "--service", "svc-demo", "--action", "promote", "--at", saturday, url=server
    )

    assert explained.code == 0, explained.err
    opens = "Mon 2026-12-14 08:00 UTC · Mon 2026-12-14 09:00 Europe/Berlin"
    shown = rows(explained.out)
    assert shown[0] == [f"Promote of svc-demo into env-prod at {saturday}: denied"]
    assert ["Next allowed", opens] in shown
    assert ["policy:change-window:weekday", f"outside weekday ({WEEKDAY})"] in shown
    assert ["weekday", WEEKDAY, "closed", f"opens {opens}"] in shown
    evaluated = next(row for row in shown if row[0] == "Evaluated")
    assert "policy:change-window:weekday" in evaluated[1] and "policy:requires:env-staging" in evaluated[1]


def test_explain_in_the_window_and_across_the_summer_time_change(server, cpctl):
    explain = ("policy", "explain", "env-prod", "--service", "svc-demo", "--action", "promote", "--at")

    monday = cpctl(*explain, "2026-12-14T10:00:00Z", url=server)  # 11:00 in Berlin

    assert monday.code == 0, monday.err
    shown = rows(monday.out)
    assert shown[0][0].endswith(": allowed")
    assert not any(row[0] == "Next allowed" for row in shown)
    closes = "closes Mon 2026-12-14 16:00 UTC · Mon 2026-12-14 17:00 Europe/Berlin"
    assert ["weekday", WEEKDAY, "open", closes] in shown

    early = cpctl(*explain, "2026-07-06T06:30:00Z", url=server)  # 08:30 summer time in Berlin (+02:00)

    assert ["Next allowed", "Mon 2026-07-06 07:00 UTC · Mon 2026-07-06 09:00 Europe/Berlin"] in rows(early.out)


def test_explain_a_rollback_into_a_frozen_environment_out_of_hours_is_allowed(server, cpctl):
    freeze_prod()

    saturday = "2026-12-12T12:00:00Z"
    explained = cpctl(
        "policy", "explain", "env-prod", "--service", "svc-demo", "--action", "rollback", "--at", saturday, url=server
    )

    assert explained.code == 0, explained.err
    assert rows(explained.out)[0] == [f"Rollback of svc-demo into env-prod at {saturday}: allowed"]


def test_explain_as_json_is_the_endpoints_answer_and_its_errors_are_the_servers(server, cpctl):
    promotion = ("--service", "svc-demo", "--action", "promote", "--at", "2026-12-12T12:00:00Z")
    found = cpctl("policy", "explain", "env-prod", *promotion, "-o", "json", url=server)

    assert found.code == 0, found.err
    answer = found.json()
    assert answer["allowed"] is False and answer["nextAllowedAt"] == "2026-12-14T08:00:00Z"
    assert answer["deniedBy"] == [{"policy": "policy:change-window:weekday", "reason": f"outside weekday ({WEEKDAY})"}]
    assert [w["name"] for w in answer["windows"]] == ["weekday"]
    assert answer["windows"][0]["timezone"] == "Europe/Berlin" and answer["windows"][0]["open"] is False

    bad_time = cpctl("policy", "explain", "env-prod", "--at", "saturday", url=server)
    assert bad_time.code == 2 and bad_time.err.startswith("error: at: ")
    assert cpctl("policy", "explain", "env-nope", url=server).code == 4
    assert cpctl("policy", "explain", "env-prod", "--service", "svc-nope", url=server).code == 2
    assert cpctl("policy", "explain", "env-prod", "--action", "restart", url=server).code == 2  # click's own


def test_explain_on_a_terminal_is_a_coloured_table(server, terminal):
    code, coloured = terminal("policy", "explain", "env-prod", "--at", "2026-12-12T12:00:00Z", url=server)

    assert code == 0, coloured
    shown = plain(coloured)
    assert "Deploy into env-prod at 2026-12-12T12:00:00Z: denied" in shown
    assert "WINDOW" in shown and "opens Mon 2026-12-14 08:00 UTC · Mon 2026-12-14 09:00 Europe/Berlin" in shown
    assert "\x1b[1;31mdenied" in coloured  # denied in bold red


# --- break-glass (needs the REST side: `breakGlass` in the deploy and promote bodies) ---


def test_break_glass_by_an_admin_promotes_through_a_freeze_and_is_audited(plane, cpctl):
    freeze_prod()
    reason = "hotfix for the checkout outage"

    promote = ("promote", "rel-123", "--to", "env-prod", "--yes", "--break-glass", reason)
    promoted = cpctl(*promote, url=plane, role="admin")

    assert promoted.code == 0, promoted.err
    target = Release.objects.get(environment_id="env-prod")
    assert target.status == "Active"
    confirmed_by(promoted.out, target.id, "release.activate")
    override = AuditEvent.objects.get(action="policy.override")
    assert override.subject_id == "rel-123" and override.metadata["reason"] == reason
    assert f"Break-glass recorded as audit event #{override.seq} (overrode: " in promoted.out
    assert "freeze:frz-launch" in promoted.out.splitlines()[-1]


def test_break_glass_is_the_servers_to_refuse_for_a_role_or_a_reason(server, cpctl):
    freeze_prod()
    release_id = create(cpctl, server)

    deployer = cpctl("deploy", release_id, "--yes", "--break-glass", "the deployer tries it", url=server)
    assert deployer.code == 3, deployer.err
    assert "CONTROLPLANE_BREAK_GLASS_ROLES" in deployer.err

    short = cpctl("promote", "rel-123", "--to", "env-prod", "--yes", "--break-glass", "now", url=server, role="admin")
    assert short.code == 2, short.err
    assert short.err.startswith("error: breakGlass")
    assert Release.objects.get(pk=release_id).status == "Draft"
    assert not Release.objects.filter(environment_id="env-prod").exists()
    assert not AuditEvent.objects.filter(action="policy.override").exists()
