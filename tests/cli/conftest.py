"""`cpctl` as its user runs it: the installed console script in its own process, against the real web server
and worker on the test database. Piped (no terminal) unless a test runs it on a pseudo-terminal."""

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TOKENS

CPCTL = Path(sys.executable).parent / "cpctl"  # the console script the project's pip install puts there
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(shown: str) -> str:
    """What a terminal showed, without its colour and cursor escapes."""
    return ESCAPES.sub("", shown)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def new_release(version: str, sha: str = "4f2a9c1", env: str = "env-staging") -> tuple[str, ...]:
    """`cpctl release create`'s arguments for a release of the demo service."""
    return ("release", "create", "--service", "svc-demo", "--env", env, "--sha", sha, "--version", version)


def new_incident(severity: str, link: str) -> tuple[str, ...]:
    return ("incident", "create", "--service", "svc-demo", "--severity", severity, "--link", link)


def cpctl_env(url: str | None, role: str | None, config_home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "NO_COLOR", "FORCE_COLOR"))}
    env = {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}  # loopback, whatever this machine uses
    env |= {"XDG_CONFIG_HOME": str(config_home), "COLUMNS": "200", "TERM": "xterm-256color"}
    if url:
        env["CONTROLPLANE_URL"] = url
    if role:
        env["CONTROLPLANE_TOKEN"] = TOKENS[role]
    return env | extra


@pytest.fixture
def config_home(tmp_path):
    return tmp_path / "config"


@pytest.fixture
def cpctl(config_home):
    """`cpctl(*args, url=…, role="deployer", **env)`: run it piped, stdin closed; a Result."""

    def run(*args, url=None, role="deployer", timeout=120, **extra) -> Result:
        done = subprocess.run(
            [str(CPCTL), *args],
            env=cpctl_env(url, role, config_home, **extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def cpctl_here(config_home):
    """The same as `cpctl`, run in this process by click's test runner rather than as a new process: the
    commands' code and the live server are the same, without starting Python for every command. The console
    script itself is run by the rollout, terminal and README tests."""
    from click.testing import CliRunner

    from cpctl.cli import cli

    def run(*args, url=None, role="deployer", **extra) -> Result:
        env = dict.fromkeys(k for k in os.environ if k.startswith(("CONTROLPLANE_", "NO_COLOR", "FORCE_COLOR")))
        env |= {"COLUMNS": None, "XDG_CONFIG_HOME": str(config_home), "CONTROLPLANE_URL": url}
        env |= {"CONTROLPLANE_TOKEN": TOKENS[role] if role else None, **extra}
        result = CliRunner().invoke(cli, list(args), env=env, prog_name="cpctl")
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def terminal(config_home):
    """`terminal(*args, url=…, answer="y")`: run cpctl on a pseudo-terminal, as a person at a shell does,
    typing `answer` when it asks; (exit code, everything it showed)."""

    def run(*args, url=None, role="deployer", answer=None, timeout=120, **extra) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: cpctl with the terminal as stdin, stdout and stderr
            os.execve(str(CPCTL), [str(CPCTL), *args], cpctl_env(url, role, config_home, **extra))
        shown, deadline = b"", time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child has gone and closed its side
                    break
                if not chunk:
                    break
                shown += chunk
                if answer is not None and b"[y/N]" in shown:
                    os.write(fd, answer.encode() + b"\r")
                    answer = None
            else:
                os.kill(pid, 9)
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")

    return run


@pytest.fixture
def server(committed_demo, web):
    """The web server alone on the demo data, for what starts no run: its URL."""
    return web()


@pytest.fixture
def plane(server, worker):
    """A running control plane (web server and worker) on the demo data: its URL."""
    worker()
    return server


@dataclass
class Started:
    """cpctl running in the background, piped, once it has said its first line on stderr."""

    process: subprocess.Popen
    first: str

    def finish(self, timeout=120) -> Result:
        out, err = self.process.communicate(timeout=timeout)
        err = self.first + err
        assert "Traceback" not in err, err
        return Result(self.process.returncode, out, err)


@pytest.fixture
def started(config_home):
    """`started(*args, url=…, role="deployer")`: cpctl in its own process, piped, returned once its first line
    on stderr has come (a followed deploy into an environment that needs approvals says which run waits), for
    the test to act meanwhile; `.finish()` waits for its end (a Result). Killed if the test leaves it running."""
    processes = []

    def run(*args, url=None, role="deployer", **extra) -> Started:
        process = subprocess.Popen(
            [str(CPCTL), *args],
            env=cpctl_env(url, role, config_home, **extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return Started(process, process.stderr.readline())

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()
