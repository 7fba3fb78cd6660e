"""cpctl without a control plane: what it needs (not Django), how it words the server's errors, how it counts
steps, and what it says when there is nothing to talk to."""

import json
import pkgutil
import socket
import subprocess
import sys
from http import HTTPStatus

import pytest

import cpctl
from cpctl import client, config, render, transport
from cpctl.client import Event
from cpctl.commands.approvals import awaiting
from cpctl.commands.audit import since_time
from cpctl.commands.rollouts import outcome
from cpctl.follow import Progress


def test_it_does_not_import_django():
    modules = [m.name for m in pkgutil.walk_packages(cpctl.__path__, "cpctl.") if m.name != "cpctl.__main__"]
    assert {"cpctl.cli", "cpctl.client", "cpctl.commands.rollouts", "cpctl.transport"} <= set(modules)
    code = (
        f"import sys, {', '.join(modules)};"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework', 'controlplane'});"
        "sys.exit(str(loaded) if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def response(status: int, body) -> transport.Response:
    content = (body if isinstance(body, str) else json.dumps(body)).encode()
    return transport.Response(status, HTTPStatus(status).phrase, {}, content, "cp.example")


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            400,
            {"sha": ["must be 7-40 lower-case hexadecimal characters."]},
            client.USAGE,
            "sha: must be 7-40 lower-case hexadecimal characters.",
        ),
        (
            400,
            {"metadata": {"owner": ["is required."]}, "name": ["too long.", "bad."]},
            client.USAGE,
            "metadata.owner: is required.; name: too long.; name: bad.",
        ),
        (
            401,
            {"detail": "Authentication credentials were not provided."},
            client.IDENTITY,
            "Authentication credentials were not provided. (set CONTROLPLANE_TOKEN, or run `cpctl login`)",
        ),
        (
            403,
            {"detail": "release.deploy needs the deployer role; dev-viewer has viewer."},
            client.IDENTITY,
            "release.deploy needs the deployer role; dev-viewer has viewer.",
        ),
        (
            404,
            {"detail": "No Release matches the given query."},
            client.NOT_FOUND,
            "No Release matches the given query.",
        ),
        (409, {"detail": "incident inc-1 is resolved."}, client.CONFLICT, "incident inc-1 is resolved."),
        (413, {"detail": "Request body over 1 MiB."}, client.USAGE, "Request body over 1 MiB."),
        (500, "<h1>Server Error</h1>", client.SERVER, "HTTP 500 Internal Server Error from cp.example"),
        (502, "", client.SERVER, "HTTP 502 Bad Gateway from cp.example"),
    ],
)
def test_the_servers_message_and_the_exit_code(status, body, code, message):
    failure = client.failure(response(status, body))
    assert (failure.code, failure.message) == (code, message)


DASH = "\u2013"  # an en dash, as the server words a window
WEEKDAY = f"Mon{DASH}Fri 09:00{DASH}17:00 Europe/Berlin"
REFUSAL = {
    "detail": f"Refused by policy (policy:change-window:weekday: outside weekday ({WEEKDAY})). "
    "It is next allowed at 2026-12-07T08:00:00Z.",
    "decision": {
        "allowed": False,
        "deniedBy": [
            {
                "policy": "policy:change-window:weekday",
                "reason": f"outside weekday ({WEEKDAY})",
            }
        ],
        "nextAllowedAt": "2026-12-07T08:00:00Z",
    },
}


def test_a_policy_refusal_is_exit_5_with_the_sentence_and_the_decision():
    refusal = client.failure(response(409, REFUSAL))
    assert isinstance(refusal, client.PolicyRefused)
    assert (refusal.code, refusal.message) == (client.CONFLICT, REFUSAL["detail"])
    assert refusal.decision == REFUSAL["decision"] and refusal.body == REFUSAL
    # Any other conflict stays one: a 409 without a decision is not a policy's.
    assert type(client.failure(response(409, {"detail": "incident inc-1 is resolved."}))) is client.Failure


@pytest.mark.parametrize(
    ("instant", "zone", "shown"),
    [
        ("2026-12-07T08:00:00Z", "Europe/Berlin", "Mon 2026-12-07 09:00 Europe/Berlin"),  # winter, +01:00
        ("2026-03-30T07:00:00Z", "Europe/Berlin", "Mon 2026-03-30 09:00 Europe/Berlin"),  # after the spring change
        ("2026-10-26T08:00:00Z", "Europe/Berlin", "Mon 2026-10-26 09:00 Europe/Berlin"),  # after the autumn change
        ("2026-03-09T13:00:00Z", "America/New_York", "Mon 2026-03-09 09:00 America/New_York"),  # EDT, -04:00
        ("2026-11-02T14:00:00Z", "America/New_York", "Mon 2026-11-02 09:00 America/New_York"),  # EST, -05:00
        ("2026-12-07T03:30:00Z", "Asia/Kolkata", "Mon 2026-12-07 09:00 Asia/Kolkata"),  # +05:30
        ("2026-12-06T19:15:00Z", "Pacific/Chatham", "Mon 2026-12-07 09:00 Pacific/Chatham"),  # +13:45, a day ahead
        ("2026-12-07T08:00:30+00:00", "UTC", "Mon 2026-12-07 08:00:30 UTC"),  # seconds only when there are some
        ("2026-12-07T08:00:00Z", "Mars/Olympus_Mons", None),  # a zone this machine does not know
    ],
)
def test_an_instant_in_a_zone(instant, zone, shown):
    assert render.moment(instant, zone) == shown


def test_the_next_opening_in_utc_and_in_the_windows_zones():
    assert render.opening("2026-12-07T08:00:00Z", ["Europe/Berlin", "Europe/Berlin", "Asia/Kolkata"]) == (
        "Mon 2026-12-07 08:00 UTC · Mon 2026-12-07 09:00 Europe/Berlin · Mon 2026-12-07 13:30 Asia/Kolkata"
    )
    assert render.opening("2026-12-07T08:00:00Z") == "Mon 2026-12-07 08:00 UTC"
    assert render.opening(None, ["Europe/Berlin"]) == "—"  # no time alone opens it

    berlin = {"ref": "policy:change-window:weekday", "timezone": "Europe/Berlin"}
    kolkata = {"ref": "policy:change-window:india", "timezone": "Asia/Kolkata"}
    # The denied windows' zones; when no window denied it (a freeze), every window's of the environment.
    assert render.window_zones(REFUSAL["decision"], [kolkata, berlin]) == ["Europe/Berlin"]
    frozen = {"deniedBy": [{"policy": "freeze:frz-1", "reason": "frozen"}]}
    assert render.window_zones(frozen, [kolkata, berlin]) == ["Asia/Kolkata", "Europe/Berlin"]
    assert render.window_zones(frozen, []) == []


def entry(message, level="info", **meta):
    return {"ts": "2026-11-27T10:00:00.000000Z", "level": level, "message": message, "meta": meta}


def test_progress_counts_steps_as_the_server_does_and_names_the_failing_one():
    progress = Progress()
    for e in (
        entry("Deploy of rel-1: started"),
        entry("aws: deploying to region us-east-1", adapter="aws", steps=2),
        entry("fly: deploying to region iad", adapter="fly", steps=3),
        entry("aws: Build the image", "debug", adapter="aws", step="build"),
        entry("aws: build done", adapter="aws", step="build"),
        entry("aws: Roll out", "debug", adapter="aws", step="rollout"),
    ):
        progress.read(e)
    assert (progress.done, progress.planned) == (1, 5)
    assert progress.summary() == "1/5 steps done · aws: rollout"
    progress.read(entry("aws: rollout failed (injected by CONTROLPLANE_FAIL_STEPS)", "error"))
    assert progress.failed_step == "aws: rollout"
    assert progress.reason == "aws: rollout failed (injected by CONTROLPLANE_FAIL_STEPS)"

    before_any_step = Progress()
    before_any_step.read(entry("aws: region is required", "error"))
    assert before_any_step.failed_step == "" and before_any_step.summary() == "planning"
    finished = Progress(planned=1)
    finished.read(entry("aws: Build", "debug", adapter="aws", step="build"))
    finished.read(entry("aws: build done", adapter="aws", step="build"))
    assert finished.summary() == "1/1 steps done"  # not the finished step's name as if it were under way


def waiting(required: int, *decisions: str, reason: str = "") -> dict:
    given = [
        {"actor": f"dev-{i}", "decision": d, "comment": "", "at": "2026-12-07T10:00:00Z"}
        for i, d in enumerate(decisions)
    ]
    return {"id": "run-1", "approvalsRequired": required, "approvals": given, "waitingReason": reason}


def test_what_a_waiting_run_waits_for():
    assert awaiting(waiting(2)) == "run-1 awaits 2 approvals (cpctl approve run-1)"
    assert awaiting(waiting(2, "approve")) == "run-1 awaits 1 more approval (cpctl approve run-1)"
    assert awaiting(waiting(1)) == "run-1 awaits 1 approval (cpctl approve run-1)"
    held = waiting(1, "approve", reason="Refused by policy (freeze:frz-1: frozen).")
    assert awaiting(held) == "run-1 is approved (1/1) and waits to start: Refused by policy (freeze:frz-1: frozen)."


def audit(seq, action, subject, **metadata):
    return Event("audit", str(seq), {"seq": seq, "action": action, "subjectId": subject, "metadata": metadata})


def test_the_outcome_is_the_event_that_ends_the_run_or_its_release():
    run = {"id": "run-1", "releaseId": "rel-new"}
    others = [audit(1, "release.activate", "rel-other"), audit(2, "run.cancel", "run-2"), Event("", "3", None)]

    rejected = outcome(iter([*others, audit(4, "run.reject", "run-1", comment="no")]), run, "rel-new")
    assert (rejected.state, rejected.event["seq"], rejected.override) == ("Rejected", 4, None)

    # A rollback: break-glass names the release rolled back, which its release.rollback event tells.
    events = [
        audit(5, "policy.override", "rel-old", reason="the checkout is down"),
        audit(6, "release.rollback", "rel-new", rollbackOf="rel-old", restores="rel-older"),
        audit(7, "release.activate", "rel-new"),
    ]
    rolled = outcome(iter([*others, *events]), run, None)
    assert (rolled.state, rolled.event["seq"], rolled.override["seq"], rolled.rollback["seq"]) == ("Active", 7, 5, 6)


def test_since_takes_durations_and_passes_times_through():
    assert since_time("2024-10-02T14:30:00Z") == "2024-10-02T14:30:00Z"
    assert since_time("15m").endswith("Z") and since_time("7d") < since_time("1h") < since_time("30s")
    assert since_time(None) is None


def test_the_environment_and_profiles(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("CONTROLPLANE_URL", raising=False)
    monkeypatch.delenv("CONTROLPLANE_TOKEN", raising=False)
    with pytest.raises(client.Failure) as nothing:
        config.resolve(None)
    assert nothing.value.code == client.USAGE and "CONTROLPLANE_URL" in nothing.value.message

    config.save(
        {
            "current": "dev",
            "profiles": {"dev": {"url": "http://a", "token": "t-a"}, "prod": {"url": "http://b", "token": "t-b"}},
        }
    )
    assert config.resolve(None) == config.Target("http://a", "t-a")
    assert config.resolve("prod") == config.Target("http://b", "t-b")
    monkeypatch.setenv("CONTROLPLANE_TOKEN", "t-env")
    assert config.resolve(None) == config.Target("http://a", "t-env")  # each variable overrides the default
    assert config.resolve("prod") == config.Target("http://b", "t-b")  # a profile named is used as stored

    monkeypatch.delenv("CONTROLPLANE_TOKEN")
    monkeypatch.setenv("CONTROLPLANE_URL", "http://c")
    config.save({"current": None, "profiles": {}})
    with pytest.raises(client.Failure) as no_token:
        config.resolve(None)
    assert no_token.value.code == client.IDENTITY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_exit_6_with_one_line(cpctl):
    url = f"http://127.0.0.1:{free_port()}"
    down = cpctl("services", url=url)
    assert down.code == 6
    assert down.err.startswith(f"error: cannot reach the control plane at {url}")
    assert len(down.err.strip().splitlines()) == 1


def test_unconfigured_is_exit_2_and_usage_errors_are_2(cpctl):
    unconfigured = cpctl("services", url=None, role=None)
    assert unconfigured.code == 2 and "CONTROLPLANE_URL" in unconfigured.err
    assert cpctl("promote", "rel-1", url="http://127.0.0.1:9").code == 2  # --to is required
    assert cpctl("services", "--output", "yaml", url="http://127.0.0.1:9").code == 2
