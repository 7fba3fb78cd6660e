"""Run the web server (threaded, so live streams never stall other requests) and the worker together;
stop both together: on Ctrl-C, on SIGTERM, or when either of them exits."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default=f"127.0.0.1:{settings.PORT}")

    def handle(self, *args, addrport, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # Each in its own process group, so stopping one stops its children too (runserver's reloader).
        processes = {
            "web": subprocess.Popen([*manage, "runserver", addrport], start_new_session=True),
            "worker": subprocess.Popen([*manage, "worker"], start_new_session=True),
        }
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes.values()):
                time.sleep(0.2)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for name, process in processes.items():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                self.stdout.write(f"{name} stopped")
