"""Not collected by the suite (no test_ prefix): tests/test_interrupted.py runs it in a pytest of its own and
interrupts that pytest while this test holds a web server, a worker and a browser."""

import json
import os
import threading
from pathlib import Path

import pytest


def test_holds_a_server_a_worker_and_a_browser_until_interrupted(web, worker, request):
    web()
    started = [worker().pid]
    if Path("/usr/bin/chromium").exists():
        request.getfixturevalue("browser")
    Path(os.environ["INTERRUPTED_RUN_READY"]).write_text(json.dumps(started))
    threading.Event().wait()  # until the signal
    pytest.fail("not interrupted")
