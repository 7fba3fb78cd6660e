"""Benchmark: the REST API under the production server (`manage.py web`, gunicorn) on large seeded datasets.

Usage: python -m bench.api [--sizes 2000x3x50,20000x3x10] [--seconds 8] [--rounds 3] [--concurrency 4]
                          [--workers 2] [--data-dir var/bench] [--no-write]
       python -m bench.api --services 200 --environments 3 --releases 50   (one size; the others default)

Run from the checkout's root, as every benchmark (`make bench` runs them all).

At each size (services x environments x releases per service and environment), on its own SQLite database
seeded once by `manage.py seed` under var/bench/ (or --data-dir) and reused while the file exists:

- times `manage.py rebuild_read_models` and `manage.py check_read_models` on that database (subprocesses,
  wall clock, Django's start included; `manage.py version` gives that start alone);
- serves it with `manage.py web` (DEBUG off, dev tokens switched on explicitly) twice: with the index cache
  on, measuring `/api/me/` (a trivial authenticated DRF view: the framework's floor), the index's first page
  (50 services), `/api/releases/?serviceId=…` (one service's releases, up to 50 rows) and the DORA metrics of
  every production environment over the 30 days up to the seed's last run (`/api/metrics/dora/?since=…&until=…`;
  also timed alone, one request at a time, against its aim of 200 ms: docs/metrics.md); then with
  CONTROLPLANE_INDEX_CACHE=0, measuring the floor, the index's first page and a page from the middle of the
  list (reached by following the index's `next` links, as a client does).

Each server run is compared with its own floor, measured in the same run, rounds alternating targets. The
figures of all sizes go side by side into one section of docs/performance.md. A database seeded before the
read model (commit 63ffa20) lacks it: delete var/bench/api-*.sqlite3 files older than that.
"""

import argparse
import json
import os
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench.loop import Target, compare, cpu_seconds, request
from bench.servers import web_server

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "var" / "bench"
MANAGE = [sys.executable, str(ROOT / "manage.py")]
DEFAULT_SIZES = "2000x3x50,20000x3x10"
BY = "\N{MULTIPLICATION SIGN}"
AIMS = {"index-off": 0.5, "releases": 0.4}  # share of the floor, at the first size
DORA_AIM_MS = 200  # the DORA metrics of every production environment over 30 days, at 2,000 services (issue 28)
DORA_ALONE = 15  # requests timed one at a time, after 3 to warm up

# Rows of the table: (key, label). Keys of the cache-on run, then of the cache-off run.
CACHED_RUN = (
    ("floor-on", "floor: `GET /api/me/` (cache-on run)"),
    ("index-on", "index, first page (50 services), cached by trail head"),
    ("releases", "`GET /api/releases/?serviceId=<middle service>`"),
    ("dora", "DORA metrics: `GET /api/metrics/dora/` (production, 30 days)"),
)
UNCACHED_RUN = (
    ("floor-off", "floor: `GET /api/me/` (cache-off run)"),
    ("index-off", "index, first page (50 services), cache off"),
    ("index-deep", "index, page from the middle of the list, cache off"),
)


def parse_size(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not SERVICESxENVIRONMENTSxRELEASES, e.g. 2000x3x50")
    return tuple(int(n) for n in match.groups())


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated SERVICESxENVIRONMENTSxRELEASES (default {DEFAULT_SIZES})",
    )
    parser.add_argument("--services", type=int, help="one size only (with --environments, --releases)")
    parser.add_argument("--environments", type=int)
    parser.add_argument("--releases", type=int)
    parser.add_argument("--seconds", type=float, default=8.0, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="web processes (manage.py web --workers)")
    add_data_dir(parser)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()
    if any(v is not None for v in (args.services, args.environments, args.releases)):
        args.sizes = [(args.services or 2000, args.environments or 3, args.releases or 50)]
    else:
        args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    return args


def add_data_dir(parser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIR, help="where the seeded databases are kept (default var/bench)"
    )


def label(size) -> str:
    services, environments, releases = size
    return f"{services:,} {BY} {environments} {BY} {releases}"


def seeded_database(size, env, folder: Path = DATA_DIR) -> Path:
    services, environments, releases = size
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"api-{services}x{environments}x{releases}.sqlite3"
    if not db.exists():
        partial = db.with_suffix(".partial")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        seed_env = {**env, "DATABASE_URL": f"sqlite:///{partial}"}
        # No system checks while preparing data (the server runs them when it starts).
        subprocess.run([*MANAGE, "migrate", "-v0", "--skip-checks"], env=seed_env, check=True)
        started = time.perf_counter()
        seed = [f"--services={services}", f"--environments={environments}", f"--releases={releases}", "--skip-checks"]
        subprocess.run([*MANAGE, "seed", *seed], env=seed_env, check=True)
        print(f"{label(size)}: seeded in {time.perf_counter() - started:.0f}s", flush=True)
        # Fold the WAL in, so the database is one file.
        conn = sqlite3.connect(partial)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        partial.rename(db)
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    else:  # seeded by an older checkout: its schema brought up to this one's (a no-op when it is)
        subprocess.run(
            [*MANAGE, "migrate", "-v0", "--skip-checks"], env={**env, "DATABASE_URL": f"sqlite:///{db}"}, check=True
        )
    return db


def command_seconds(env, *argv) -> tuple[float, str]:
    """Wall-clock seconds of `manage.py <argv>` as a subprocess, and its output; a failure stops the bench."""
    started = time.perf_counter()
    done = subprocess.run([*MANAGE, *argv], env=env, cwd=ROOT, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(
            f"manage.py {' '.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
        )
    return took, done.stdout + done.stderr


def read_model_times(env) -> dict:
    """Rebuild the read models (idempotent), then check them against history (read only); both timed."""
    startup, _ = command_seconds(env, "version")
    rebuild, output = command_seconds(env, "rebuild_read_models")
    inside = re.search(r"in ([\d.]+) s", output)
    check, _ = command_seconds(env, "check_read_models")
    return {
        "startup": startup,
        "rebuild": rebuild,
        "rebuild_inside": float(inside.group(1)) if inside else None,
        "check": check,
    }


def dora_path(db: Path) -> str:
    """The DORA metrics of every production environment over 30 days: the 30 days up to the seeded database's last
    finished run (the seed's history ends when it was seeded; the database is kept and reused)."""
    conn = sqlite3.connect(db)
    try:
        last = conn.execute("SELECT MAX(finished_at) FROM releases_workflowrun").fetchone()[0]
    finally:
        conn.close()
    if last is None:
        return "/api/metrics/dora/"
    until = datetime.fromisoformat(last).replace(tzinfo=UTC, microsecond=0) + timedelta(seconds=1)
    window = {"since": until - timedelta(days=30), "until": until}
    return "/api/metrics/dora/?" + urlencode({k: v.isoformat().replace("+00:00", "Z") for k, v in window.items()})


def timed_alone(server, path, token, count: int = DORA_ALONE) -> tuple[list[float], float]:
    """Milliseconds of `count` requests sent one at a time (after three to warm up), and the server's CPU
    milliseconds per request meanwhile (what a busy shared machine does not stretch)."""
    for _ in range(3):
        get(server.port, path, token)
    times, before = [], cpu_seconds(server.pid)
    for _ in range(count):
        started = time.perf_counter()
        status, body = get(server.port, path, token)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"GET {path}: {status} {body[:300]!r}")
    return times, (cpu_seconds(server.pid) - before) * 1000 / count


def get(port, path, token) -> tuple[int, bytes]:
    return request(port, Target(path, path), token)


def get_json(port, path, token) -> dict:
    status, body = get(port, path, token)
    if status != 200:
        raise SystemExit(f"GET {path}: {status} {body[:300]!r}")
    return json.loads(body)


def middle_page(port, token, services) -> tuple[str, str]:
    """The path of the index page holding the middle service, reached by following `next` from the first
    page, and a description of that page (which services it shows)."""
    path, seen = "/api/services/index/", 0
    while True:
        page = get_json(port, path, token)
        if seen + len(page["results"]) > services // 2 or not page.get("next"):
            break
        seen += len(page["results"])
        nxt = urlsplit(page["next"])
        path = f"{nxt.path}?{nxt.query}"
    shown = page["results"]
    return (
        path,
        f"services {seen + 1:,}\N{EN DASH}{seen + len(shown):,} of {services:,} (from `{shown[0]['id']}`), "
        f"page {seen // len(shown) + 1}",
    )


def run_targets(args, env, token, targets, prepare=None) -> dict:
    """Serve `env`'s database, let `prepare(server)` add targets that need the server (a cursor it signs),
    then measure every target (bench/loop.py). Returns per target (median req/s, p50 ms, p95 ms)."""
    with web_server(env, args.workers) as server:
        targets = {**targets, **(prepare(server) if prepare else {})}
        figures = compare(
            {"ours": server},
            {key: Target(key, path) for key, path in targets.items()},
            token,
            seconds=args.seconds,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )
    return {key: (f.rate, f.p50, f.p95) for (_, key), f in figures.items()}


def bench_size(args, size, env, token) -> dict:
    services = size[0]
    db = seeded_database(size, env, args.data_dir)
    env = {**env, "DATABASE_URL": f"sqlite:///{db}"}
    times = read_model_times(env)
    print(
        f"{label(size)}: rebuild_read_models {times['rebuild']:.1f}s, check_read_models {times['check']:.1f}s "
        f"(Django start {times['startup']:.1f}s)",
        flush=True,
    )
    middle = f"svc-seed-{services // 2:05d}"
    releases_path = f"/api/releases/?serviceId={middle}"
    dora = dora_path(db)
    notes = {}

    def count_releases(server):
        notes["release_rows"] = len(get_json(server.port, releases_path, token)["results"])
        figures = get_json(server.port, dora, token)
        notes["dora_counted"] = (figures["deploymentFrequency"]["count"], figures["changeFailureRate"]["total"])
        notes["dora_alone"], notes["dora_cpu"] = timed_alone(server, dora, token)
        return {}

    def find_middle(server):
        path, notes["deep_page"] = middle_page(server.port, token, services)
        return {"index-deep": path}

    loads = [os.getloadavg()[0]]
    print(f"{label(size)}: load average {loads[-1]:.2f} before the cache-on run", flush=True)
    cached = run_targets(
        args,
        env,
        token,
        {"floor-on": "/api/me/", "index-on": "/api/services/index/", "releases": releases_path, "dora": dora},
        count_releases,
    )
    loads.append(os.getloadavg()[0])
    print(f"{label(size)}: load average {loads[-1]:.2f} before the cache-off run", flush=True)
    uncached = run_targets(
        args,
        {**env, "CONTROLPLANE_INDEX_CACHE": "0"},
        token,
        {"floor-off": "/api/me/", "index-off": "/api/services/index/"},
        find_middle,
    )
    rows = {}
    for group, floor in ((cached, "floor-on"), (uncached, "floor-off")):
        for key, (rps, p50, p95) in group.items():
            rows[key] = (rps, p50, p95, rps / group[floor][0])
    for key, name in (*CACHED_RUN, *UNCACHED_RUN):
        rps, p50, p95, share = rows[key]
        print(f"  {name:60} {rps:8.1f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {share:.2f} of floor")
    print(f"  release list: {notes['release_rows']} rows; middle page: {notes['deep_page']}", flush=True)
    alone = notes["dora_alone"]
    print(
        f"  DORA metrics ({notes['dora_counted'][0]} deployments, {notes['dora_counted'][1]} with failed attempts), "
        f"one request at a time: median {statistics.median(alone):.0f} ms, max {max(alone):.0f} ms "
        f"(aim ≤ {DORA_AIM_MS} ms), server CPU {notes['dora_cpu']:.0f} ms a request",
        flush=True,
    )
    return {"rows": rows, "times": times, "middle": middle, "loads": loads, "dora_path": dora, **notes}


def verdict(share: float, aim: float) -> str:
    return f"**{share:.2f}** (aim ≥ {aim}: {'met' if share >= aim else 'not met'})"


def section(args, results) -> str:
    sizes = list(results)
    head = "| target | " + " | ".join(f"{label(s)}: req/s | p50 ms | p95 ms | share of floor" for s in sizes)
    rule = "| --- |" + " ---: | ---: | ---: | ---: |" * len(sizes)
    lines = [head + " |", rule]
    for key, name in (*CACHED_RUN, *UNCACHED_RUN):
        cells = []
        for s in sizes:
            rps, p50, p95, share = results[s]["rows"][key]
            cells.append(f"{rps:,.1f} | {p50:.1f} | {p95:.1f} | {share:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)

    times = ["| size | releases | `rebuild_read_models` | of which the rebuild itself | `check_read_models` |"]
    times.append("| --- | ---: | ---: | ---: | ---: |")
    for s in sizes:
        t = results[s]["times"]
        inside = f"{t['rebuild_inside']:.1f} s" if t["rebuild_inside"] is not None else "?"
        times.append(f"| {label(s)} | {s[0] * s[1] * s[2]:,} | {t['rebuild']:.1f} s | {inside} | {t['check']:.1f} s |")
    startup = statistics.median(results[s]["times"]["startup"] for s in sizes)

    details = "; ".join(
        f"at {label(s)} the release list returns {results[s]['release_rows']} rows of `{results[s]['middle']}`, "
        f"the middle page shows {results[s]['deep_page']}"
        for s in sizes
    )
    first = sizes[0]
    summary = [
        f"At {label(first)} the index computed on every request runs at "
        f"{verdict(results[first]['rows']['index-off'][3], AIMS['index-off'])} of the floor (first page; "
        f"{results[first]['rows']['index-deep'][3]:.2f} for the middle page), the release list at "
        f"{verdict(results[first]['rows']['releases'][3], AIMS['releases'])}, the cached index at "
        f"{results[first]['rows']['index-on'][3]:.2f}."
    ]
    for s in sizes:
        alone, (deployed, attempted) = results[s]["dora_alone"], results[s]["dora_counted"]
        cpu = results[s]["dora_cpu"]
        median = statistics.median(alone)
        met = "met" if median <= DORA_AIM_MS else "not met"
        summary.append(
            f"At {label(s)} the DORA metrics of every production environment over 30 days (the 30 days up to the "
            f"seed's last run: {deployed:,} deployments, {attempted:,} with the failed attempts) come back in "
            f"**{median:.0f} ms** one request at a time (median of {len(alone)}; max {max(alone):.0f} ms; aim ≤ "
            f"{DORA_AIM_MS} ms: {met}; the server's CPU {cpu:.0f} ms a request), p50 "
            f"{results[s]['rows']['dora'][1]:.0f} ms and p95 {results[s]['rows']['dora'][2]:.0f} ms under "
            f"{args.concurrency} clients."
        )
    for s in sizes[1:]:
        growth = ", ".join(
            f"{name} p50 {results[first]['rows'][key][1]:.1f} → {results[s]['rows'][key][1]:.1f} ms, share "
            f"{results[first]['rows'][key][3]:.2f} → {results[s]['rows'][key][3]:.2f}"
            for key, name in (("index-off", "first page"), ("index-deep", "middle page"), ("index-on", "cached"))
        )
        summary.append(f"From {label(first)} to {label(s)}, the index: {growth}.")
    loads = "; ".join(f"{label(s)}: {', '.join(f'{x:.1f}' for x in results[s]['loads'])}" for s in sizes)
    summary.append(
        f"The machine's load average (1 min) before each server run, cache on then off: {loads} "
        f"({os.cpu_count()} CPUs; the clients share them with the server)."
    )
    return (
        f"## REST API (`bench/api.py`)\n\n"
        f"`manage.py web` (DEBUG off, dev tokens on with CONTROLPLANE_DEV_MODE=1), "
        f"{args.workers} web processes, SQLite, one database per size seeded by `manage.py seed` (services {BY} "
        f"environments {BY} releases per service and environment, as many audit events as releases). "
        f"{args.concurrency} concurrent clients on the same machine, a new connection per request; median of "
        f"{args.rounds} rounds of {args.seconds:g} s per target, rounds alternating. Two server runs per size, "
        f"the index cache on, then off (CONTROLPLANE_INDEX_CACHE=0); each target's share is of the floor "
        f"measured in its own run. The middle page is reached by following `next` from the first page; "
        f"{details}.\n\n"
        f"{table}\n\n" + "\n".join(summary) + "\n\n"
        f"The read models on the same databases, each command a subprocess, wall clock (starting Django, "
        f"`manage.py version`, takes {startup:.1f} s of it); `rebuild_read_models` rewrites every row in one "
        f"transaction, `check_read_models` recomputes them and compares, writing nothing:\n\n" + "\n".join(times) + "\n"
    )


def server_env(token: str) -> dict:
    """A benchmarked server's environment: production settings, one viewer token, no audit mirror."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Production settings over plain HTTP on loopback, as behind a proxy that terminates TLS.
        "SECURE_SSL_REDIRECT": "0",
        "CONTROLPLANE_DEV_MODE": "1",
        "CONTROLPLANE_DEV_TOKENS": json.dumps({token: {"id": "bench", "role": "viewer"}}),
        "CONTROLPLANE_AUDIT_LOG": "",
        "LOG_LEVEL": "WARNING",
    }


def main():
    args = parse_args()
    token = secrets.token_urlsafe(24)
    env = server_env(token)
    results = {size: bench_size(args, size, env, token) for size in args.sizes}
    if not args.no_write:
        from bench.report import write_section

        write_section("api", section(args, results))


if __name__ == "__main__":
    main()
