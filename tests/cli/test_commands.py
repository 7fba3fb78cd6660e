"""cpctl's reading and incident commands against a live server: tables for people, JSON for scripts, colour
only where it belongs, profiles, and the exit codes of docs/cli.md."""

import json
import os
import select
import stat
import subprocess

import pytest
from django.db import connection

from incidents.models import Incident
from releases.models import Release
from tests.cli.conftest import CPCTL, cpctl_env, new_incident, new_release
from tests.conftest import TOKENS

ANSI = "\x1b["
# cpctl touches no database, and what these commands read is tested on both by tests/api: run once, on
# SQLite, to keep the PostgreSQL run within its time. The rollouts (worker, streams) run on both.
pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the client's reads: tested on SQLite")


@pytest.fixture
def cpctl(cpctl_here):
    return cpctl_here  # in this process: these tests run some sixty commands


@pytest.fixture
def plane(server):  # no worker: only test_runs_logs deploys, and starts one
    return server


def test_whoami(plane, cpctl):
    assert cpctl("whoami", url=plane).out.strip() == f"dev-deployer (deployer, devToken) at {plane}"
    assert cpctl("whoami", "-o", "json", url=plane, role="viewer").json() == {
        "actor": "dev-viewer",
        "role": "viewer",
        "authMethod": "devToken",
    }


def test_services_shows_current_and_newer_releases_and_incidents_by_severity(plane, cpctl):
    cpctl(
        *new_release("2024.10.02"),
        "--id",
        "rel-next",
        url=plane,
    )

    table = cpctl("services", url=plane)

    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["SERVICE", "ENVIRONMENT", "CURRENT", "LATEST", "INCIDENTS"]
    staging = next(line for line in lines if "env-staging" in line)
    # What runs (rel-123), and the newer release beside it, with its status.
    assert "rel-123 2024.10.01 (9f3b7de)" in staging and "rel-next 2024.10.02 (4f2a9c1) Draft" in staging
    assert "svc-demo" in lines[1] and "1 high" in lines[1]
    assert ANSI not in table.out  # piped: no colour
    assert all(line == line.rstrip() for line in lines)  # nor padding at the ends of rows

    entries = cpctl("services", "-o", "json", url=plane).json()
    assert [e["id"] for e in entries] == ["svc-demo"]
    assert entries[0]["incidents"]["highestOpenSeverity"] == "high"


def test_colour_only_when_forced_or_on_a_terminal(plane, cpctl, terminal):
    assert ANSI not in cpctl("incidents", url=plane).out
    forced = cpctl("incidents", "--color", url=plane).out
    assert "\x1b[1;31mhigh" in forced  # high in bold red
    assert ANSI in cpctl("incidents", url=plane, FORCE_COLOR="1").out
    assert ANSI not in cpctl("incidents", "--color", "--no-color", url=plane).out

    code, shown = terminal("incidents", url=plane)
    assert code == 0 and "\x1b[1;31mhigh" in shown
    for off in ({"NO_COLOR": "1"}, {}):
        args = ("incidents",) if off else ("incidents", "--no-color")
        code, shown = terminal(*args, url=plane, **off)
        assert code == 0 and "high" in shown
        assert "\x1b[31" not in shown and "\x1b[1;31" not in shown, shown  # no colour, whatever the terminal


def test_every_command_speaks_json(plane, cpctl):
    for args in (
        ("whoami",),
        ("services",),
        ("service", "show", "svc-demo"),
        ("releases", "--service", "svc-demo", "--current"),
        ("release", "show", "rel-123"),
        ("incidents", "--open"),
        ("audit", "--limit", "3"),
    ):
        result = cpctl(*args, "-o", "json", url=plane)
        assert result.code == 0, (args, result.err)
        json.loads(result.out)  # one JSON document, nothing else on stdout


def test_service_show(plane, cpctl):
    shown = cpctl("service", "show", "svc-demo", url=plane)
    assert "github.com/blackroad/demo" in shown.out and "inc-789" in shown.out
    data = cpctl("service", "show", "svc-demo", "-o", "json", url=plane).json()
    assert data["service"]["id"] == "svc-demo"
    assert [e["id"] for e in data["environments"]] == ["env-prod", "env-staging"]
    assert [i["id"] for i in data["openIncidents"]] == ["inc-789"]

    missing = cpctl("service", "show", "svc-nope", url=plane)
    assert missing.code == 4 and missing.err.startswith("error: ")


def test_releases_filters(plane, cpctl):
    current = cpctl("releases", "--env", "env-staging", "--status", "Active", "-o", "json", url=plane).json()
    assert [r["id"] for r in current] == ["rel-123"]
    assert cpctl("releases", "--env", "env-prod", "-o", "json", url=plane).json() == []
    for n in range(2):
        cpctl(
            *new_release(f"7.{n}"),
            url=plane,
        )
    cut = cpctl("releases", "--limit", "2", url=plane)
    assert len(cut.out.splitlines()) == 3 and "The first 2 shown; there are more (--limit)." in cut.err
    assert "there are more" not in cpctl("releases", "--limit", "3", url=plane).err
    bad = cpctl("releases", "--status", "Bogus", url=plane)
    assert bad.code == 2 and "Bogus" in bad.err


def test_release_create_reports_the_servers_rule(plane, cpctl):
    bad = cpctl(
        *new_release("1", sha="XYZ"),
        url=plane,
    )
    assert bad.code == 2
    assert bad.err.strip() == "error: sha: must be 7-40 lower-case hexadecimal characters."

    viewer = cpctl(
        *new_release("1"),
        url=plane,
        role="viewer",
    )
    assert viewer.code == 3 and "release.create needs the deployer role" in viewer.err


def test_incident_create_acknowledge_resolve_and_a_conflict(plane, cpctl):
    made = cpctl(
        *new_incident("critical", "https://pager.example/1"),
        "--title",
        "Checkout down",
        "--id",
        "inc-cli",
        "-o",
        "json",
        url=plane,
    )
    assert made.code == 0, made.err
    assert made.json()["status"] == "triggered"

    listed = cpctl("incidents", "--open", "--severity", "critical", url=plane)
    assert "inc-cli" in listed.out and "inc-789" not in listed.out

    acked = cpctl("incident", "ack", "inc-cli", url=plane)
    assert acked.code == 0 and "inc-cli critical on svc-demo: acknowledged, now acknowledged" in acked.out
    assert cpctl("incident", "resolve", "inc-cli", url=plane).code == 0
    assert Incident.objects.get(pk="inc-cli").status == "resolved"

    again = cpctl("incident", "ack", "inc-cli", url=plane)
    assert again.code == 5
    assert "inc-cli is resolved" in again.err
    assert cpctl("incident", "resolve", "inc-nope", url=plane).code == 4


def test_audit_shows_the_newest_events_and_filters(plane, cpctl):
    for n in range(3):
        cpctl(
            *new_incident("low", f"https://pager.example/{n}"),
            "--id",
            f"inc-a{n}",
            url=plane,
        )

    newest = cpctl("audit", "--limit", "2", "-o", "json", url=plane).json()
    assert [e["subjectId"] for e in newest] == ["inc-a1", "inc-a2"]  # the last two, oldest first

    by_action = cpctl("audit", "--action", "incident.create", "--limit", "50", "-o", "json", url=plane).json()
    assert [e["subjectId"] for e in by_action] == ["inc-a0", "inc-a1", "inc-a2"]
    since = cpctl("audit", "--since", "1h", "--action", "incident.create", "-o", "json", url=plane).json()
    assert len(since) == 3

    bad = cpctl("audit", "--since", "yesterday", url=plane)
    assert bad.code == 2 and "since" in bad.err


def read_line(stream, seconds=30) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"nothing within {seconds} s"
    return stream.readline()


def test_audit_follow_prints_the_backlog_then_streams_new_events_as_json_lines(plane, cpctl, config_home):
    incident = ("incident", "create", "--service", "svc-demo", "--severity", "low", "--link", "https://pager.example/f")
    assert cpctl(*incident, "--id", "inc-before", url=plane).code == 0
    process = subprocess.Popen(
        [str(CPCTL), "audit", "--follow", "--action", "incident.create", "-o", "json"],
        env=cpctl_env(plane, "viewer", config_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The backlog comes once the stream is open: what is created after it can only arrive through the stream.
        assert json.loads(read_line(process.stdout))["subjectId"] == "inc-before"
        assert cpctl(*incident, "--id", "inc-followed", url=plane).code == 0
        assert json.loads(read_line(process.stdout))["subjectId"] == "inc-followed"
    finally:
        process.kill()
        process.wait()


def test_runs_logs(plane, worker, cpctl):
    worker()
    run = cpctl("deploy", "rel-123", "--yes", url=plane)  # Active already: a conflict, no run
    assert run.code == 5
    made = cpctl(
        *new_release("9"),
        url=plane,
    ).out.strip()
    run_id = cpctl("deploy", made, "--yes", "-o", "json", url=plane).json()["run"]["id"]

    logs = cpctl("runs", "logs", run_id, url=plane)
    assert logs.code == 0 and "succeeded" in logs.out
    entries = cpctl("runs", "logs", run_id, "-o", "json", url=plane).json()
    assert entries[0]["message"].startswith(f"Deploy of {made}")
    followed = cpctl("runs", "logs", run_id, "--follow", "-o", "json", url=plane)
    assert [json.loads(line) for line in followed.out.splitlines()] == entries
    assert cpctl("runs", "logs", "run-nope", url=plane).code == 4


def test_login_stores_a_private_profile_and_refuses_a_bad_token(plane, cpctl, config_home):
    bad = cpctl("login", "--url", plane, "--token", "nope", url=None, role=None)
    assert bad.code == 3
    assert not (config_home / "cpctl" / "config.json").exists()

    good = cpctl("login", "--url", plane, "--token", TOKENS["admin"], "--profile", "ops", url=None, role=None)
    assert good.code == 0, good.err
    stored = config_home / "cpctl" / "config.json"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert TOKENS["admin"] not in good.out + good.err  # the token is never echoed

    # The profile logged in last is used when the environment names none; --profile picks one.
    assert cpctl("whoami", url=None, role=None).out.startswith("dev-admin (admin")
    assert cpctl("whoami", "--profile", "ops", url=None, role="viewer").out.startswith("dev-admin (admin")
    # The environment wins over the stored default.
    assert cpctl("whoami", url=None, role="viewer").out.startswith("dev-viewer (viewer")
    missing = cpctl("whoami", "--profile", "nope", url=None, role=None)
    assert missing.code == 2 and "no profile 'nope'" in missing.err

    assert cpctl("logout", "--profile", "ops", url=None, role=None).code == 0
    assert cpctl("whoami", url=None, role=None).code == 2


def test_login_reads_the_token_from_stdin_when_not_given(plane, config_home):
    role = "viewer"

    done = subprocess.run(
        [str(CPCTL), "login", "--url", plane],
        env=cpctl_env(None, None, config_home),
        input=TOKENS[role] + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"as dev-{role} ({role})" in done.stdout
    assert TOKENS[role] not in done.stdout + done.stderr


def test_ids_are_one_path_segment_and_server_text_is_shown_as_text(plane, cpctl):
    draft = cpctl(
        *new_release("1.0[/rc]"),
        url=plane,
    ).out.strip()
    # An "id" that would walk to another endpoint reaches none: a 404 for that id, and nothing deployed.
    for args in (
        ("incident", "resolve", f"../releases/{draft}/deploy/?"),
        ("release", "show", "?status=Draft"),
        ("runs", "logs", ".."),
        ("deploy", "../rel-123", "--yes"),
    ):
        result = cpctl(*args, url=plane)
        assert result.code == 4, (args, result.err)
    assert Release.objects.get(pk=draft).status == "Draft"

    made = cpctl(
        *new_incident("low", "https://x.example/1"),
        "--title",
        "disk [/full] on [red]node3[/red] :fire:",
        url=plane,
    )
    assert made.code == 0, made.err
    listed = cpctl("incidents", url=plane)
    assert listed.code == 0 and "disk [/full] on [red]node3[/red] :fire:" in listed.out
    assert "1.0[/rc]" in cpctl("releases", url=plane).out


def test_tokens_and_urls_are_checked_and_never_shown(plane, cpctl):
    token = TOKENS["deployer"]
    assert cpctl("whoami", url=plane, role=None, CONTROLPLANE_TOKEN=token + "\r\n").code == 0  # a file's line end
    for bad in ("sekr\u00e9t", "two words"):
        result = cpctl("whoami", url=plane, role=None, CONTROLPLANE_TOKEN=bad)
        assert result.code == 3 and bad not in result.err and "(not shown)" in result.err
    for url in ("127.0.0.1:8000", "ftp://x.example"):
        result = cpctl("whoami", url=url)
        assert result.code == 2 and "must be http(s)://host[:port]" in result.err


def test_ctrl_d_at_the_question_is_a_no(plane, cpctl, terminal):
    draft = cpctl(
        *new_release("2"),
        url=plane,
    ).out.strip()
    code, shown = terminal("deploy", draft, url=plane, answer="\x04")
    assert code == 2 and "not confirmed: nothing was changed." in shown
    assert Release.objects.get(pk=draft).status == "Draft"
