"""The servers the benchmarks measure, each on a free loopback port: the control plane's own (`manage.py web`)
and the reference it is measured against, the same WSGI application under gunicorn's sync workers."""

import http.client
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.loop import Server

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(command: list[str], env: dict):
    """Runs `command` (given the port) until it answers /healthz; yields the Server; stops it afterwards."""
    port = free_port()
    process = subprocess.Popen([sys.executable, *command(port)], cwd=ROOT, env=env)
    try:
        for _ in range(1200):
            if process.poll() is not None:
                raise SystemExit(f"{' '.join(command(port))} exited ({process.returncode})")
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        yield Server(port, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def web_server(env: dict, workers: int = 1):
    """The production web server, `manage.py web`."""
    return serving(lambda port: [str(ROOT / "manage.py"), "web", f"127.0.0.1:{port}", f"--workers={workers}"], env)


def reference_server(env: dict, workers: int = 1):
    """The same application and settings under gunicorn's sync workers, as its documentation deploys Django: the
    framework's floor on this machine (no access log, as the benchmarked servers write none at LOG_LEVEL=WARNING)."""
    return serving(
        lambda port: [
            "-m",
            "gunicorn",
            f"--workers={workers}",
            f"--bind=127.0.0.1:{port}",
            "--no-control-socket",
            "controlplane.wsgi",
        ],
        env,
    )
