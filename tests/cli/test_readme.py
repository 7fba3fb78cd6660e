"""The README's first deploy runs as pasted: the whole block, in bash, against a live server and worker. Only
the URL and the way the token is found differ (the suite's server, the suite's token)."""

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from releases.models import Release
from services.models import ChangeWindow, Environment
from tests.cli.conftest import cpctl_env
from tests.conftest import TOKENS
from tests.live import SHIPPED_PROD_REFS

ROOT = Path(__file__).resolve().parents[2]
TOKEN_LINE = "$(python manage.py dev_tokens --role deployer)"


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"<!-- first-deploy[^>]*-->\n```sh\n(.*?)```", readme, re.S)[1]


def window_now(is_open: bool):
    """The demo's gates as shipped, its `weekday` window made open or closed at this moment: the server runs on
    the real clock, so the block is run at both kinds of hour, whatever the hour of the test."""
    Environment.objects.filter(pk="env-prod").update(policy_refs=SHIPPED_PROD_REFS)
    today = datetime.now(ZoneInfo("Europe/Berlin")).isoweekday()
    days = [today] if is_open else [today % 7 + 1]  # tomorrow only: closed now, and all of today
    ChangeWindow.objects.filter(name="weekday").update(days=days, start="00:00", end="24:00")


@pytest.mark.parametrize("is_open", [True, False], ids=["window-open", "window-closed"])
def test_the_first_deploy_runs_as_pasted(plane, config_home, is_open):
    window_now(is_open)
    block = walkthrough()
    assert "http://127.0.0.1:${PORT:-8000}" in block and TOKEN_LINE in block and "set -e" in block
    script = block.replace("http://127.0.0.1:${PORT:-8000}", plane).replace(TOKEN_LINE, TOKENS["deployer"])
    script = script.replace(". .venv/bin/activate", f'PATH="{Path(sys.executable).parent}:$PATH"')

    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env=cpctl_env(None, None, config_home) | {"PATH": os.environ["PATH"]},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    staging = Release.objects.get(environment_id="env-staging", version="2024.10.02")
    assert staging.status == "Active"
    assert f"{staging.id} is Active in env-staging, confirmed by audit event #" in done.stdout
    assert "release.activate" in done.stdout  # the audit tail at the end shows it
    if is_open:
        prod = Release.objects.get(environment_id="env-prod", version="2024.10.02")
        assert prod.status == "Active" and prod.is_current
        assert f"{prod.id} is Active in env-prod, confirmed by audit event #" in done.stdout
    else:
        assert not Release.objects.filter(environment_id="env-prod", version="2024.10.02").exists()
        assert "outside weekday" in done.stderr and "next allowed:" in done.stderr
        assert "policy.deny" in done.stdout  # the audit tail shows the refusal
