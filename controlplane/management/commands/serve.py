"""Run the web server (`manage.py web`, gunicorn) and the background worker together, for `make run` and
`make serve` alike: a small process manager. The port is checked first; SIGINT, SIGTERM and SIGHUP stop
both; a crashed worker is restarted with backoff while the web server keeps serving; if the web server
exits, the worker is stopped and serve exits non-zero."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from controlplane.portcheck import port_in_use_message, split_addrport

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_TIMEOUT = 10.0  # seconds a child's group has to exit on SIGTERM before SIGKILL
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 1.0, 30.0, 60.0
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int):
    """A preexec_fn (Linux): the child gets SIGTERM when the supervisor dies, even by SIGKILL, which no
    handler sees. Without it a SIGKILLed supervisor would orphan its children, since each runs in its
    own process group (so a group signal to the supervisor's group does not reach them directly).
    For the web server the SIGTERM reaches gunicorn's arbiter, which stops its worker processes before it
    exits. Elsewhere (no prctl) this does nothing."""

    def preexec():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default=f"127.0.0.1:{settings.PORT}")
        parser.add_argument(
            "--workers", type=int, default=settings.WEB_CONCURRENCY, help="web processes (default: WEB_CONCURRENCY)"
        )
        parser.add_argument("--check-port", action="store_true", help="only check that the port is free")

    def log(self, message: str) -> None:
        self.stderr.write(f"serve: {message}")
        self.stderr.flush()

    def handle(self, *args, addrport, workers, check_port, **options):
        host, port = split_addrport(addrport)
        message = port_in_use_message(host, port)
        if message:
            self.stderr.write(message)
            sys.exit(1)
        if check_port:
            return
        sys.exit(self.supervise(["web", addrport, f"--workers={workers}"]))

    def start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        # Each child leads its own process group (so killpg stops gunicorn's worker processes too) in our
        # session; it dies with us through PR_SET_PDEATHSIG. stdin is /dev/null: a background group never
        # reads the terminal. The supervisor is single-threaded, so preexec_fn is safe here.
        process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), *arguments],
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self.log(f"{name} started (pid {process.pid})")
        return process

    def supervise(self, web_arguments: list[str]) -> int:
        received = []

        def stop(signum, frame):
            received.append(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)

        web = self.start("web", web_arguments)
        worker = self.start("worker", ["worker"])
        worker_started = time.monotonic()
        backoff = BACKOFF_FIRST
        restart_at = None
        status = 0
        try:
            while not received:
                if web.poll() is not None:
                    self.log(f"web (pid {web.pid}) exited ({describe(web.returncode)}); stopping")
                    status = 1
                    break
                now = time.monotonic()
                if worker is not None and worker.poll() is not None:
                    self._kill_group(worker, signal.SIGKILL)  # anything it left behind
                    if now - worker_started >= BACKOFF_RESET_AFTER:
                        backoff = BACKOFF_FIRST
                    self.log(
                        f"worker (pid {worker.pid}) exited ({describe(worker.returncode)}); restarting in {backoff:g} s"
                    )
                    restart_at, worker = now + backoff, None
                    backoff = min(backoff * 2, BACKOFF_MAX)
                if worker is None and now >= restart_at:
                    worker = self.start("worker", ["worker"])
                    worker_started = now
                time.sleep(0.2)
            if received:
                self.log(f"{signal.Signals(received[0]).name} received; stopping")
        finally:
            for signum in STOP_SIGNALS:  # a second Ctrl-C must not interrupt the shutdown
                signal.signal(signum, signal.SIG_IGN)
            self.stop_all({"web": web, "worker": worker})
        return status

    @staticmethod
    def _kill_group(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    def stop_all(self, processes: dict) -> None:
        running = {name: p for name, p in processes.items() if p is not None}
        for process in running.values():
            self._kill_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in running.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{name} (pid {process.pid}) did not stop in {STOP_TIMEOUT:g} s; killing it")
            self._kill_group(process, signal.SIGKILL)  # the leader, or what its group left behind
            process.wait()
            self.log(f"{name} stopped")
