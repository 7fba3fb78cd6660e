"""A clean environment for running the project in a fresh process: none of this process's configuration
(which may come from the checkout's .env), and no .env unless a test names one."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Everything controlplane/settings.py (and the Makefile) reads.
_PREFIXES = ("CONTROLPLANE_", "OIDC_", "SECURE_")
_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "LOG_LEVEL",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "REDIS_URL",
}


def clean_environment(tmp_path: Path, **variables: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _NAMES and not k.startswith(_PREFIXES)}
    env["CONTROLPLANE_ENV_FILE"] = str(tmp_path / "no.env")  # does not exist: no .env
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cp.sqlite3'}"
    return {**env, **variables}


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=60.0, what="the condition"):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the process group `process` leads, SIGKILL to what is left after `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the leader if it hung, or anything its group left behind
    process.wait()


@contextlib.contextmanager
def web_server(env: dict, log_path: Path, *arguments: str):
    """The real web server (`manage.py web`, uvicorn) on a free loopback port: yields its base URL once
    /healthz answers, and stops it with its whole process group afterwards. Its output goes to `log_path`."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "web", f"127.0.0.1:{port}", *arguments],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def answers():
        assert process.poll() is None, f"the web server exited:\n{log_path.read_text()[-3000:]}"
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
        except urllib.error.HTTPError:
            pass  # it answers
        except OSError:
            return False
        return True

    try:
        wait_for(answers, timeout=30, what="the web server")
        yield url
    finally:
        stop_group(process)
