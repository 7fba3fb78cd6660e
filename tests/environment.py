"""A clean environment for running the project in a fresh process: none of this process's configuration
(which may come from the checkout's .env), and no .env unless a test names one."""

import os
import socket
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Everything controlplane/settings.py reads.
_PREFIXES = ("CONTROLPLANE_", "OIDC_", "SECURE_")
_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "PORT",
    "LOG_LEVEL",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
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
