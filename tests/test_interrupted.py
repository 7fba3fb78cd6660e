"""An interrupted suite leaves nothing running: a pytest of its own, holding a web server, a worker and a
browser (tests/interrupted_run.py), is stopped as `timeout make test` stops it (SIGTERM to its process group),
as a closed terminal does (SIGHUP), and with SIGKILL, which runs no teardown at all."""

import os
import signal
import subprocess
import sys

import pytest

from tests.environment import ROOT, alive, clean_environment, descendants, wait_for

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]


@pytest.mark.parametrize("how", ["SIGTERM to the group", "SIGHUP", "SIGKILL"])
def test_an_interrupted_suite_leaves_no_server_worker_or_browser(tmp_path, how):
    ready = tmp_path / "ready"
    env = clean_environment(tmp_path, DEBUG="1", INTERRUPTED_RUN_READY=str(ready), PYTEST_ADDOPTS="")
    suite = subprocess.Popen(
        # Its own --basetemp: pytest otherwise keeps only the newest three numbered temporary folders, and would
        # delete this suite's own while its tests use them.
        [*PYTEST, f"--basetemp={tmp_path / 'inner'}", "tests/interrupted_run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: ready.exists() or suite.poll() is not None, timeout=120, what="the inner test to start")
        assert suite.poll() is None, "the inner suite ended before it was interrupted"
        started = descendants(suite.pid)
        assert len(started) >= 2, "a web server and a worker (and a browser) below the inner pytest"
        if how == "SIGTERM to the group":
            os.killpg(suite.pid, signal.SIGTERM)
        else:
            os.kill(suite.pid, getattr(signal, how))
        suite.wait(timeout=60)
        wait_for(lambda: not any(alive(pid) for pid in started), timeout=30, what="every process to end")
    finally:
        if suite.poll() is None:
            os.killpg(suite.pid, signal.SIGKILL)
            suite.wait()
