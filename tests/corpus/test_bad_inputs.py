"""The bad-input corpus (tests/corpus/bad_inputs.py), REST and /graphql/, replayed against a real server process.

`manage.py web` (gunicorn) serves the committed test database (the demo data); the script runs as its own
process, the way it runs against any server, and its report must show no 5xx, no 2xx for bad input,
an audit trail that bad input did not grow, and `audit_verify` passing after as before."""

import json
import shlex
import subprocess
import sys

import pytest
from django.core.management import call_command

from tests.environment import clean_environment, web_server
from tests.live import ROOT, database_url

SCRIPT = ROOT / "tests" / "corpus" / "bad_inputs.py"
TOKEN = "corpus-admin-token-0123456789"


def server_environment(tmp_path) -> dict:
    # None of this process's settings (nor the checkout's .env): the server gets exactly these.
    return clean_environment(
        tmp_path,
        # Production settings (DEBUG off: errors are answers, not debug pages), with a dev token to act.
        DEBUG="0",
        SECRET_KEY="corpus-test-secret-key-" + "x" * 40,
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1",
        CONTROLPLANE_DEV_MODE="1",
        CONTROLPLANE_DEV_TOKENS=json.dumps({TOKEN: {"id": "corpus-admin", "role": "admin"}}),
        CONTROLPLANE_AUDIT_LOG="",
        DATABASE_URL=database_url(),
        LOG_LEVEL="CRITICAL",
    )


@pytest.fixture
def server(transactional_db, tmp_path):
    """The real web server (`manage.py web`, gunicorn) on a free loopback port, over the committed demo data."""
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    env = server_environment(tmp_path)
    log_path = tmp_path / "server.log"
    with web_server(env, log_path) as url:
        yield url, env, log_path


def test_bad_inputs_are_refused_without_5xx_and_leave_the_audit_trail_alone(server):
    url, env, server_log = server
    verify = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'manage.py'))} audit_verify"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--url", url, "--token", TOKEN, "--json", "--action-controls"),
            *("--verify-cmd", verify),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), f"the script could not run:\n{done.stderr}\n{done.stdout[-3000:]}"
    report = json.loads(done.stdout)

    def failing(*verdicts):
        rows = [f for f in report["failures"] if f["verdict"] in verdicts]
        return "\n".join(
            f"  [{f['name']}] {f['method']} {f['path']} -> {f['status']}: {f['body'][:200]}" for f in rows[:60]
        ) + (f"\n  … and {len(rows) - 60} more" if len(rows) > 60 else "")

    counts, audit = report["counts"], report["audit"]
    assert report["distinct"] == report["cases"] >= 500
    assert not report["skipped"], report["skipped"][:3]
    controls = report["controls"] + report["actionControls"]
    assert all(c["ok"] for c in controls), [c for c in controls if not c["ok"]]
    assert counts["5xx"] == 0, (
        f"{counts['5xx']} bad inputs got a 5xx:\n{failing('5xx')}\n" + (server_log.read_text()[-2000:])
    )
    assert counts["bad_2xx"] == 0, f"{counts['bad_2xx']} bad inputs were accepted:\n{failing('bad_2xx')}"
    assert counts["no_answer"] == 0, failing("no_answer")
    assert audit["writtenByBadInput"] == 0 and not audit["refusedButAudited"], audit
    assert report["verify"]["before"]["rc"] == 0 and report["verify"]["after"]["rc"] == 0, report["verify"]
    assert report["verify"]["unchanged"], report["verify"]
    assert done.returncode == 0
