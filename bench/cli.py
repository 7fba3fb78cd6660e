"""Benchmark: what `cpctl` costs a person at a terminal, against the same work done by hand in the same run.

Usage: python -m bench.cli [--rounds 15] [--no-write]

On a fresh SQLite database with the demo data, the production web server and one worker (zero step delay):
- starting: what `cpctl --help` and `cpctl whoami` spend importing (`python -X importtime`, bench/importtime.py);
- a read: `cpctl whoami` against `curl` of `/api/me/`, each a new process, as a shell runs them, and `cpctl --help`;
- a deploy to its confirmed outcome: `cpctl deploy --yes` (preview, listen, POST, follow the log, wait for the
  audit event) against a client that POSTs the deploy and polls the release every 50 ms until it is Active,
  and against the run's own duration as the worker recorded it.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.importtime import importing
from bench.report import write_section
from bench.servers import web_server

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "bench-deployer-token-0123456789"
CPCTL = Path(sys.executable).parent / "cpctl"


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000, done.stdout


def poll_deploy(url: str, release_id: str) -> None:
    """The baseline client: POST, then ask for the release every 50 ms until it has settled."""
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        http.post(f"/api/releases/{release_id}/deploy/").raise_for_status()
        while http.get(f"/api/releases/{release_id}/").json()["status"] == "Promoting":
            time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="cp-bench-cli-")
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
        "CONTROLPLANE_AUDIT_LOG": "",
        "CONTROLPLANE_STEP_DELAY_SECONDS": "0",
        "CONTROLPLANE_DEV_TOKENS": json.dumps({TOKEN: {"id": "bench", "role": "deployer"}}),
        "LOG_LEVEL": "WARNING",
        "XDG_CONFIG_HOME": tmp,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    # No system checks while preparing data (the server runs them when it starts).
    subprocess.run([*manage, "migrate", "-v0", "--skip-checks"], env=env, cwd=ROOT, check=True)
    subprocess.run([*manage, "load_demo", "--skip-checks"], env=env, cwd=ROOT, check=True, capture_output=True)
    worker = subprocess.Popen([*manage, "worker", "-v0"], env=env, cwd=ROOT)
    try:
        with web_server(env) as server:
            port = server.port
            url = f"http://127.0.0.1:{port}"
            cli_env = {**env, "CONTROLPLANE_URL": url, "CONTROLPLANE_TOKEN": TOKEN}
            reads = {"cpctl whoami": [], "curl /api/me/": [], "cpctl --help": []}
            imports = {"cpctl --help": [], "cpctl whoami": []}
            deploys = {"cpctl deploy --yes": [], "POST, then poll every 50 ms": []}
            run_ms = []
            curl = shutil.which("curl")
            for n in range(args.rounds):
                for command in imports:
                    started = importing("-m", "cpctl", *command.split()[1:], env=cli_env)
                    assert started.done.returncode == 0, started.done.stderr
                    imports[command].append(started.ms)
                reads["cpctl whoami"].append(timed([str(CPCTL), "whoami"], cli_env)[0])
                reads["cpctl --help"].append(timed([str(CPCTL), "--help"], cli_env)[0])
                if curl:
                    me = [curl, "-sf", "-H", f"Authorization: Bearer {TOKEN}", f"{url}/api/me/"]
                    reads["curl /api/me/"].append(timed(me, cli_env)[0])
                for how in deploys:  # alternating, so that both see the same database as it grows
                    create = [
                        str(CPCTL),
                        "release",
                        "create",
                        "--service",
                        "svc-demo",
                        "--env",
                        "env-staging",
                        "--sha",
                        "4f2a9c1",
                        "--version",
                        f"b{n}-{len(deploys[how])}{how[0]}",
                    ]
                    release_id = timed(create, cli_env)[1].strip()
                    if how.startswith("cpctl"):
                        ms, out = timed([str(CPCTL), "deploy", release_id, "--yes", "-o", "json"], cli_env)
                        run = json.loads(out)["run"]
                        run_ms.append(duration_ms(run["startedAt"], run["finishedAt"]))
                    else:
                        start = time.perf_counter()
                        poll_deploy(url, release_id)
                        ms = (time.perf_counter() - start) * 1000
                    deploys[how].append(ms)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    rows = ["| What | median | p90 |", "| --- | ---: | ---: |"]
    for name, values in {**reads, **deploys, "the run itself (worker's startedAt to finishedAt)": run_ms}.items():
        if values:
            rows.append(f"| {name} | {statistics.median(values):.0f} ms | {quantile(values, 0.9):.0f} ms |")
    starting = ["| Importing (`python -X importtime -m cpctl …`) | best | median |", "| --- | ---: | ---: |"]
    for name, values in imports.items():
        starting.append(f"| {name} | {min(values):.0f} ms | {statistics.median(values):.0f} ms |")
    body = "\n".join(
        [
            "## cpctl (`bench/cli.py`)",
            "",
            f"{args.rounds} rounds against the production web server and one worker on SQLite, demo data, zero step"
            " delay. Each command is a new process, as a shell runs it. A deploy is timed from the command to its"
            " settled outcome: cpctl fetches the preview, opens the audit stream, POSTs, follows the log stream and"
            " waits for the audit event; the baseline POSTs and polls the release every 50 ms.",
            "",
            *rows,
            "",
            *starting,
            "",
            "Where cpctl's time goes: starting Python and importing what the command uses (the sum of the top-level"
            " imports' cumulative times, Python's own start-up included; tests/cli/test_startup.py holds both to"
            " 150 ms): `--help` imports click alone, `whoami` adds rich and the standard library's `http.client`;"
            " httpx, whose import and client cost about as much as all the rest of `whoami`, is loaded only by the"
            " commands that stream (deploy, promote, rollback, `--follow`). Then, on SQLite, the streams' change"
            " feed, which looks for new rows every 0.25 s: the log's end and the audit event each wait for a look"
            " (PostgreSQL notifies at commit instead). In exchange a deploy is followed live, its outcome is the"
            " audit event itself, and nothing polls the server.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("cli", body)


def duration_ms(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    main()
