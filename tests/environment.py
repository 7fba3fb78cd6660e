"""A clean environment for running the project in a fresh process: none of this process's configuration
(which may come from the checkout's .env), and no .env unless a test names one."""

import contextlib
import ctypes
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

# Dev tokens for the suite, one per role (never the ones in var/dev-tokens.json).
TOKENS = {role: f"test-{role}-token-0123456789" for role in ("viewer", "deployer", "admin")}

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


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cost_ratio(work, small, large, repeat: int = 3) -> float:
    """How many times the CPU time of `work(small)` that `work(large)` takes, the best of `repeat` runs each.
    A test of how a cost grows (in proportion, or as a square) compares the two, rather than bounding one by
    a wall clock that a busy machine stretches; this thread's CPU time is not what other processes take."""

    def best(argument) -> float:
        times = []
        for _ in range(repeat):
            started = time.thread_time()
            work(argument)
            times.append(time.thread_time() - started)
        return min(times)

    return best(large) / max(best(small), 1e-6)


def wait_for(predicate, timeout=60.0, what="the condition"):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# Every process the suite starts (servers, workers, the OpenID Provider), until it is stopped: what an
# interrupted run (Ctrl-C, SIGTERM from `timeout`) still has to stop on its way out.
_started: dict[int, subprocess.Popen] = {}
_PR_SET_PDEATHSIG = 1


def _end_with_the_suite() -> None:
    """Run in the child before exec: the kernel sends it SIGTERM when the test process dies, however it dies
    (even SIGKILL, which runs no teardown)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_process(args, **kwargs) -> subprocess.Popen:
    """A process of the suite's: leading a process group of its own (stop it with `stop_group`), and ended with
    the suite if the suite ends first."""
    process = subprocess.Popen(args, start_new_session=True, preexec_fn=_end_with_the_suite, **kwargs)
    _started[process.pid] = process
    return process


def stop_everything() -> None:
    """Stop every process the suite started and has not stopped yet (at exit, or when interrupted)."""
    for process in list(_started.values()):
        stop_group(process, timeout=5)


def stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the process group `process` leads, SIGKILL to what is left after `timeout` seconds."""
    _started.pop(process.pid, None)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the leader if it hung, or anything its group left behind
    process.wait()


@contextlib.contextmanager
def web_server(env: dict, log_path: Path, *arguments: str, with_process: bool = False):
    """The real web server (`manage.py web`, gunicorn) on a free loopback port: yields its base URL once
    /healthz answers (with `with_process`, the URL and the process), and stops it with its whole process group
    afterwards. Its output goes to `log_path`."""
    port = free_port()
    with log_path.open("w") as log:
        process = start_process(
            [sys.executable, str(ROOT / "manage.py"), "web", f"127.0.0.1:{port}", *arguments],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
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
        yield (url, process) if with_process else url
    finally:
        stop_group(process)
