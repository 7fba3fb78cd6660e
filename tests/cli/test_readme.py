"""The README's first deploy runs as pasted: the whole block, in bash, against a live server and worker. Only
the URL and the way the token is found differ (the suite's server, the suite's token)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from releases.models import Release
from tests.cli.conftest import cpctl_env
from tests.conftest import TOKENS

ROOT = Path(__file__).resolve().parents[2]
TOKEN_LINE = "$(python manage.py dev_tokens --role deployer)"


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"<!-- first-deploy[^>]*-->\n```sh\n(.*?)```", readme, re.S)[1]


def test_the_first_deploy_runs_as_pasted(plane, config_home):
    block = walkthrough()
    assert "http://127.0.0.1:8000" in block and TOKEN_LINE in block
    script = block.replace("http://127.0.0.1:8000", plane).replace(TOKEN_LINE, TOKENS["deployer"])
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
    prod = Release.objects.get(environment_id="env-prod", version="2024.10.02")
    assert staging.status == prod.status == "Active" and prod.is_current
    assert f"{staging.id} is Active in env-staging, confirmed by audit event #" in done.stdout
    assert f"{prod.id} is Active in env-prod, confirmed by audit event #" in done.stdout
    assert "release.activate" in done.stdout  # the audit tail at the end shows it
