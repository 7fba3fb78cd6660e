"""`manage.py devserver` as a process manager, run for real: the port checked first, no child left
running after SIGHUP to its process group, a SIGKILLed worker restarted while the web server serves."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.environment import ROOT, clean_environment, free_port, wait_for

MANAGE = [sys.executable, str(ROOT / "manage.py")]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rpartition(")")[2].split()[:2]
    return state, int(ppid)


def alive(pid: int) -> bool:
    s = stat(pid)
    return s is not None and s[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            s = stat(int(entry.name))
            if s and s[1] == pid and s[0] != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child_running(supervisor: int, command: str) -> int | None:
    for pid in children(supervisor):
        if f"manage.py {command}" in cmdline(pid):
            return pid
    return None


def healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status
    except OSError:
        return None


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("devserver")
    env = clean_environment(tmp_path, DEBUG="1", CONTROLPLANE_AUDIT_LOG="", LOG_LEVEL="WARNING")
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    return env


@pytest.fixture
def devserver(environment, tmp_path):
    """Starts `manage.py devserver` on a free port in its own session; returns (process, port, log)."""
    seen: set[int] = set()
    started = []

    def start():
        port = free_port()
        log_path = tmp_path / "devserver.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*MANAGE, "devserver", f"127.0.0.1:{port}"],
                env=environment,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)

        def up():
            seen.update(descendants(process.pid))
            assert process.poll() is None, log_path.read_text()
            return healthz(port) == 200 and child_running(process.pid, "worker")

        wait_for(up, timeout=40, what="the web server and the worker")
        return process, port, log_path, seen

    yield start
    for process in started:
        if process.poll() is None:
            seen.update(descendants(process.pid))
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for pid in seen:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_port_in_use_fails_at_once_naming_port(environment):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [*MANAGE, "devserver", f"127.0.0.1:{port}"],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "PORT=" in done.stderr
    assert time.monotonic() - started < 15
    # The same check alone, as `make run` runs it first.
    checked = subprocess.run(
        [sys.executable, str(ROOT / "controlplane" / "portcheck.py"), "127.0.0.1", str(free_port())],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_b_sighup_to_its_process_group_leaves_no_child(devserver):
    process, port, log_path, seen = devserver()
    web = child_running(process.pid, "runserver")
    assert web and descendants(web), "runserver's reloader runs the server in a child"
    seen.update(descendants(process.pid))
    os.killpg(process.pid, signal.SIGHUP)
    process.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in seen), what=f"no child left of {sorted(seen)}")
    wait_for(lambda: port_free(port), what=f"port {port} to be free")
    assert "SIGHUP received" in log_path.read_text()


def test_c_a_sigkilled_worker_is_restarted_while_the_web_server_serves(devserver):
    process, port, log_path, seen = devserver()
    worker = child_running(process.pid, "worker")
    os.kill(worker, signal.SIGKILL)
    answers = []

    def restarted():
        answers.append(healthz(port))
        new = child_running(process.pid, "worker")
        return new if new and new != worker else None

    new_worker = wait_for(restarted, timeout=30, what="a new worker")
    seen.add(new_worker)
    answers.append(healthz(port))
    assert set(answers) == {200}, answers
    assert process.poll() is None
    log = log_path.read_text()
    assert f"worker (pid {worker}) exited (killed by SIGKILL); restarting in 1 s" in log
