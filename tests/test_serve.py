"""`manage.py serve` as a process manager, run for real through `make run` and `make serve`: the port checked
first, no process left running after SIGHUP or SIGTERM to make's process group (with one web process and
with two), a SIGKILLed worker restarted while the web server serves, production refusing to start without
SECRET_KEY."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.environment import (
    ROOT,
    alive,
    children,
    clean_environment,
    descendants,
    free_port,
    start_process,
    stop_group,
    wait_for,
)

MANAGE = [sys.executable, str(ROOT / "manage.py")]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(root: int, command: str) -> int | None:
    """The process below `root` running `manage.py <command>`."""
    for pid in sorted(descendants(root)):
        if f"manage.py {command}" in cmdline(pid):
            return pid
    return None


def status(port: int, path: str = "/healthz") -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except OSError:
        return None


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("serve")
    env = clean_environment(
        tmp_path,
        DEBUG="1",
        CONTROLPLANE_AUDIT_LOG="",
        LOG_LEVEL="WARNING",
        # Configured, so `make run` prints no tokens and writes none into the checkout's var/.
        CONTROLPLANE_DEV_TOKENS='{"serve-test-token-0123456789": {"id": "serve-test", "role": "viewer"}}',
    )
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    return env


def production(environment: dict, **variables: str) -> dict:
    """`make serve`'s environment: no DEBUG of its own (make's default and .env say DEBUG=1)."""
    env = {k: v for k, v in environment.items() if k != "DEBUG"}
    return {**env, "SECURE_SSL_REDIRECT": "0", **variables}


@pytest.fixture
def launch(tmp_path):
    """`launch(command, env)` starts `command` in a session of its own with PORT set to a free port, waits
    until /healthz answers and the worker runs, and returns (process, port, log path, every pid seen below it)."""
    started = []

    def start(command: list[str], env: dict):
        port = free_port()
        log_path = tmp_path / f"serve-{len(started)}.log"
        with log_path.open("w") as log:
            process = start_process(
                [*command, f"127.0.0.1:{port}"] if command[0] == sys.executable else command,
                env={**env, "PORT": str(port)},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        seen: set[int] = set()
        started.append((process, seen))

        def up():
            seen.update(descendants(process.pid))
            assert process.poll() is None, log_path.read_text()
            return status(port) == 200 and running(process.pid, "worker")

        wait_for(up, timeout=120, what="the web server and the worker")
        seen.update(descendants(process.pid))
        return process, port, log_path, seen

    yield start
    for process, seen in started:
        if process.poll() is None:
            seen.update(descendants(process.pid))
            stop_group(process)
        for pid in seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def assert_all_stopped(process, port: int, seen: set[int]) -> None:
    assert process.wait(timeout=30) is not None
    wait_for(lambda: not any(alive(pid) for pid in seen), what=f"no process left of {sorted(seen)}")
    wait_for(lambda: port_free(port), what=f"port {port} to be free")


def test_a_port_in_use_fails_at_once_naming_port(environment):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*MANAGE, "serve", f"127.0.0.1:{port}"],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        # The same check alone, as `make run` and `make serve` run it first.
        checked = subprocess.run(
            [sys.executable, str(ROOT / "controlplane" / "portcheck.py"), "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
        )
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "PORT=" in done.stderr
    assert checked.returncode == 1 and f"port {port} on 127.0.0.1 is in use" in checked.stderr
    free = subprocess.run(
        [sys.executable, str(ROOT / "controlplane" / "portcheck.py"), "127.0.0.1", str(free_port())],
        capture_output=True,
        text=True,
    )
    assert free.returncode == 0, free.stderr


def test_b_sighup_to_make_runs_process_group_leaves_no_process(environment, launch):
    make, port, log_path, seen = launch(["make", "run"], environment)
    web = running(make.pid, "web")
    assert web and len(descendants(web)) == 1, "with DEBUG on, one web process serves (under gunicorn's arbiter)"
    os.killpg(make.pid, signal.SIGHUP)
    assert_all_stopped(make, port, seen)
    assert "SIGHUP received" in log_path.read_text()


def test_c_a_sigkilled_worker_is_restarted_while_the_web_server_serves(environment, launch):
    process, port, log_path, seen = launch([*MANAGE, "serve"], environment)
    worker = running(process.pid, "worker")
    os.kill(worker, signal.SIGKILL)
    answers = []

    def restarted():
        answers.append(status(port))
        new = running(process.pid, "worker")
        return new if new and new != worker else None

    new_worker = wait_for(restarted, timeout=30, what="a new worker")
    seen.add(new_worker)
    answers.append(status(port))
    assert set(answers) == {200}, answers
    assert process.poll() is None
    log = log_path.read_text()
    assert f"worker (pid {worker}) exited (killed by SIGKILL); restarting in 1 s" in log


def test_d_make_serve_refuses_to_start_without_secret_key(environment, tmp_path):
    dot_env = tmp_path / ".env"
    dot_env.write_text("DEBUG=1\n")  # the development .env that `make run` writes
    done = subprocess.run(
        ["make", "serve"],
        env=production(environment, CONTROLPLANE_ENV_FILE=str(dot_env), PORT=str(free_port())),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert ours == [
        "SECRET_KEY must be set when DEBUG is off, like SECRET_KEY=<50 random characters>; "
        "for development, `make run` or `make test` writes .env with DEBUG=1."
    ], done.stderr


def test_e_make_serve_with_two_web_processes_stops_whole_on_sigterm(environment, launch):
    env = production(environment, SECRET_KEY=secrets.token_urlsafe(50), WEB_CONCURRENCY="2")
    make, port, log_path, seen = launch(["make", "serve"], env)
    web = running(make.pid, "web")
    assert len(children(web)) == 2, "gunicorn's arbiter (manage.py web) and its two worker processes"
    assert status(port, "/static/controlplane/base.css") == 200  # collected, and served by the app
    assert status(port, "/login/") == 200
    os.killpg(make.pid, signal.SIGTERM)
    assert_all_stopped(make, port, seen)
    assert "SIGTERM received" in log_path.read_text()
