"""Benchmark: the REST API under the production server (`manage.py web`, uvicorn) on a large seeded dataset.

Usage: python bench/api.py [--services 2000] [--environments 3] [--releases 50] [--seconds 8] [--rounds 3]
                          [--workers 2] [--no-write]

Measures requests/s and p50/p95 latency of `/api/services/index/` (a 50-service page) and
`/api/releases/?serviceId=…` (50 rows) against `/api/me/`, a trivial authenticated DRF view (the
framework's floor), in the same run, rounds alternating, and writes the figures to docs/performance.md.
The seeded SQLite database is kept under var/bench/ and reused while its size arguments match.
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import web_server  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--environments", type=int, default=3)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="web processes (manage.py web --workers)")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args()


def seeded_database(args, env) -> Path:
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"api-{args.services}x{args.environments}x{args.releases}.sqlite3"
    if not db.exists():
        partial = db.with_suffix(".partial")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        seed_env = {**env, "DATABASE_URL": f"sqlite:///{partial}"}
        run = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*run, "migrate", "-v0"], env=seed_env, check=True)
        started = time.perf_counter()
        subprocess.run(
            [
                *run,
                "seed",
                f"--services={args.services}",
                f"--environments={args.environments}",
                f"--releases={args.releases}",
            ],
            env=seed_env,
            check=True,
        )
        print(f"seeded in {time.perf_counter() - started:.0f}s")
        # Fold the WAL in, so the copy is one file.
        import sqlite3

        with sqlite3.connect(partial) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        partial.rename(db)
    return db


def measure(port, path, token, seconds, concurrency):
    latencies, errors, stop = [], [], time.perf_counter() + seconds
    lock = threading.Lock()

    def client():
        mine = []
        while time.perf_counter() < stop:
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
            response = conn.getresponse()
            response.read()
            conn.close()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                errors.append(response.status)
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"{path}: {len(errors)} failed requests (status {errors[0]})")
    return len(latencies) / elapsed, latencies


def run_targets(args, env, token, targets) -> dict:
    with web_server(env, args.workers) as port:
        for path in targets.values():  # warm up each worker's caches and connections
            measure(port, path, token, 1.0, args.concurrency)
        results = {name: ([], []) for name in targets}
        for _ in range(args.rounds):
            for name, path in targets.items():
                rps, latencies = measure(port, path, token, args.seconds, args.concurrency)
                results[name][0].append(rps)
                results[name][1].extend(latencies)
    return results


def main():
    args = parse_args()
    token = secrets.token_urlsafe(24)
    env = {
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
    db = seeded_database(args, env)
    env["DATABASE_URL"] = f"sqlite:///{db}"
    middle = f"svc-seed-{args.services // 2:05d}"
    floor = "floor: GET /api/me/"
    results = run_targets(
        args,
        env,
        token,
        {
            floor: "/api/me/",
            "GET /api/services/index/ (50 services; cached by trail head)": "/api/services/index/",
            f"GET /api/releases/?serviceId={middle} (50 rows)": f"/api/releases/?serviceId={middle}",
        },
    )
    uncached = run_targets(
        args,
        {**env, "CONTROLPLANE_INDEX_CACHE": "0"},
        token,
        {
            floor: "/api/me/",
            "GET /api/services/index/ (50 services; cache off)": "/api/services/index/",
        },
    )
    # Each run is compared with its own floor; the floor row shown is the first run's.
    uncached_floor = statistics.median(uncached.pop(floor)[0])
    rows = []
    floor_rps = statistics.median(results[floor][0])
    for group, base in ((results, floor_rps), (uncached, uncached_floor)):
        for name, (rates, latencies) in group.items():
            rps = statistics.median(rates)
            q = statistics.quantiles(latencies, n=100)
            rows.append((name, rps, q[49] * 1000, q[94] * 1000, rps / base))
    for name, rps, p50, p95, share in rows:
        print(f"{name:60} {rps:8.1f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {share:.2f} of floor")
    index_share, uncached_share = rows[1][4], rows[3][4]
    print(f"index at {index_share:.2f} of the floor (cached), {uncached_share:.2f} (cache off); aim: at least 0.25")
    if not args.no_write:
        from bench.report import write_section

        table = "\n".join(f"| {n} | {r:,.1f} | {p50:.1f} | {p95:.1f} | {share:.2f} |" for n, r, p50, p95, share in rows)
        write_section(
            "api",
            f"## REST API (`bench/api.py`)\n\n"
            f"`manage.py web` (uvicorn, ASGI), {args.workers} web processes, SQLite; {args.services} services x "
            f"{args.environments} "
            f"environments x {args.releases} releases ({args.services * args.environments * args.releases:,} "
            f"releases and as many audit events, from `manage.py seed`). {args.concurrency} concurrent clients "
            f"on the same machine, new connection per request; median of {args.rounds} rounds of "
            f"{args.seconds:g}s per target, rounds alternating.\n\n"
            f"| target | req/s | p50 ms | p95 ms | share of floor |\n| --- | ---: | ---: | ---: | ---: |\n{table}\n\n"
            f"The index page runs at **{index_share:.2f}** of the floor's requests/s served from its cache, "
            f"and at **{uncached_share:.2f}** computed on every request (aim: at least 0.25).\n",
        )


if __name__ == "__main__":
    main()
