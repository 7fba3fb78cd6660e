"""Benchmark: one web process holding 1,000 open audit streams.

Usage: python -m bench.streams [--streams 1000] [--seconds 8] [--events 10] [--postgres] [--data-dir var/bench]
                               [--no-write]

The production server (`manage.py web`, one process, DEBUG off) serves a fresh database with the demo data
(var/bench/streams.sqlite3, or in --data-dir; with --postgres a temporary database on 127.0.0.1:5432).
Another process (this script, re-run with --hold) opens the streams, 20 per principal (the default limit)
from 50 viewer tokens, and notes when each event arrives on each stream. In the same run this script
measures:
- `/api/me/` latency (p50, p95; 4 clients, a new connection per request) with no stream open, with all of
  them open, and after they closed;
- for each of `--events` changes made through the API, 0.5 to 1.5 s apart: the time from just before the
  request that commits it until 95% and until 100% of the streams hold the event;
- the server's resident memory before and with the streams open, per stream.
Figures go to docs/performance.md.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from bench.api import add_data_dir
from bench.loop import Target, burst
from bench.servers import web_server

ROOT = Path(__file__).resolve().parent.parent

PER_PRINCIPAL = 20  # CONTROLPLANE_STREAMS_PER_PRINCIPAL's default, left as it is


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0, help="per /api/me/ measurement")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="on the local PostgreSQL server (LISTEN/NOTIFY)")
    add_data_dir(parser)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    parser.add_argument("--hold", help=argparse.SUPPRESS)  # internal: PORT, the holder process
    return parser.parse_args()


# --- The holder: another process that opens the streams and notes arrivals ---


async def hold(port: int, tokens: list[str]) -> None:
    arrivals: dict[int, list[float]] = {}
    opened = 0
    gate = asyncio.Semaphore(50)  # connections being opened at once

    async def follow(token: str):
        nonlocal opened
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /api/audit-events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise SystemExit(f"stream refused: {status.decode().strip()}")
            while b": connected" not in await reader.readline():
                pass
            opened += 1
        while line := await reader.readline():
            if line.startswith(b"id: "):
                arrivals.setdefault(int(line[4:]), []).append(time.time())

    tasks = [asyncio.create_task(follow(token)) for token in tokens]
    while opened < len(tokens):
        await asyncio.sleep(0.05)
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()
    print("ready", flush=True)
    # Each line on stdin asks for the arrivals so far; the end of stdin ends the holder.
    while await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline):
        print(json.dumps(arrivals), flush=True)


# --- The measuring side ---


def request(port, method, path, token, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data)


def me_latencies(port, token, seconds, concurrency=4) -> list[float]:
    return burst(port, Target("`GET /api/me/`", "/api/me/"), token, seconds, concurrency)[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")


def quantiles(values):
    q = statistics.quantiles(values, n=100)
    return q[49] * 1000, q[94] * 1000


def measure(args, database_url: str) -> dict:
    viewers = [secrets.token_urlsafe(24) for _ in range(-(-args.streams // PER_PRINCIPAL))]
    admin = secrets.token_urlsafe(24)
    tokens = {t: {"id": f"bench-viewer-{i}", "role": "viewer"} for i, t in enumerate(viewers)}
    tokens[admin] = {"id": "bench-admin", "role": "admin"}
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # production settings over plain HTTP on loopback, as behind a TLS proxy
        "CONTROLPLANE_DEV_MODE": "1",
        "CONTROLPLANE_DEV_TOKENS": json.dumps(tokens),
        "CONTROLPLANE_AUDIT_LOG": "",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    # No system checks while preparing data (the server runs them when it starts).
    subprocess.run([*manage, "migrate", "-v0", "--skip-checks"], env=env, check=True)
    subprocess.run([*manage, "load_demo", "--skip-checks"], env=env, check=True, stdout=subprocess.DEVNULL)
    with web_server(env) as server:
        port = server.port
        me_latencies(port, admin, min(1.0, args.seconds))  # warm up
        pid = request(port, "GET", "/api/streams/", admin)["pid"]
        before = me_latencies(port, admin, args.seconds)
        rss_before = rss_kib(pid)
        # Several principals, PER_PRINCIPAL each: the default limits hold.
        holder_tokens = [viewers[i // PER_PRINCIPAL] for i in range(args.streams)]
        holder = subprocess.Popen(
            [sys.executable, "-m", "bench.streams", "--hold", str(port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**env, "BENCH_TOKENS": json.dumps(holder_tokens)},
        )
        try:
            started = time.perf_counter()
            if holder.stdout.readline().strip() != "ready":
                raise SystemExit("the holder did not open its streams")
            opened_in = time.perf_counter() - started
            open_now = request(port, "GET", "/api/streams/", admin)["open"]
            assert open_now == args.streams, f"{open_now} streams open, not {args.streams}"
            time.sleep(1)
            rss_with = rss_kib(pid)
            during = me_latencies(port, admin, args.seconds)
            committed = {}
            for n in range(args.events):
                if n:
                    time.sleep(0.5 + random.random())  # at varied moments of the feed's polling
                sent = time.time()
                name = f"bench-{n}-{secrets.token_hex(3)}"
                made = request(port, "POST", "/api/environments/", admin, {"name": name})
                (event,) = request(port, "GET", f"/api/audit-events/?subjectId={made['id']}", admin)["results"]
                committed[sent] = event["seq"]

            def arrivals_so_far() -> dict[int, list[float]]:
                holder.stdin.write("report\n")
                holder.stdin.flush()
                return {int(k): v for k, v in json.loads(holder.stdout.readline()).items()}

            # Until every event is on every stream, or 10 s after the last (the shortfall is then reported below).
            deadline = time.perf_counter() + 10
            while True:
                arrivals = arrivals_so_far()
                delivered = all(len(arrivals.get(seq, ())) >= args.streams for seq in committed.values())
                if delivered or time.perf_counter() > deadline:
                    break
                time.sleep(0.25)
            holder.stdin.close()
        finally:
            holder.terminate()
            holder.wait(timeout=30)
        deadline = time.perf_counter() + 1  # the server notices the clients left
        while request(port, "GET", "/api/streams/", admin)["open"] and time.perf_counter() < deadline:
            time.sleep(0.05)
        after = me_latencies(port, admin, args.seconds)
        left_open = request(port, "GET", "/api/streams/", admin)["open"]
    deliveries = []
    for sent, seq in committed.items():
        times = sorted(t - sent for t in arrivals.get(seq, []))
        if len(times) < args.streams:
            raise SystemExit(f"event #{seq} reached {len(times)} of {args.streams} streams")
        deliveries.append((times[int(0.95 * len(times)) - 1], times[-1]))
    baseline = before + after
    return {
        "streams": args.streams,
        "opened_in": opened_in,
        "me_without": quantiles(baseline),
        "me_with": quantiles(during),
        "rss_before": rss_before,
        "rss_with": rss_with,
        "deliveries": deliveries,
        "left_open": left_open,
    }


def report(r: dict, database: str) -> str:
    (p50_0, p95_0), (p50_1, p95_1) = r["me_without"], r["me_with"]
    p95s = [d[0] * 1000 for d in r["deliveries"]]
    alls = [d[1] * 1000 for d in r["deliveries"]]
    per_stream = (r["rss_with"] - r["rss_before"]) / r["streams"]
    return (
        f"**{database}**: {r['streams']:,} streams opened in {r['opened_in']:.1f} s.\n\n"
        f"| measure | without streams | with {r['streams']:,} streams | ratio |\n| --- | ---: | ---: | ---: |\n"
        f"| `/api/me/` p50 | {p50_0:.1f} ms | {p50_1:.1f} ms | {p50_1 / p50_0:.2f} |\n"
        f"| `/api/me/` p95 | {p95_0:.1f} ms | {p95_1:.1f} ms | **{p95_1 / p95_0:.2f}** (aim: at most 2) |\n\n"
        f"From just before the request that commits an event until 95% of the streams hold it: median "
        f"**{statistics.median(p95s):.0f} ms**, worst {max(p95s):.0f} ms (aim: within 1 s); until all of them "
        f"do: median {statistics.median(alls):.0f} ms, worst {max(alls):.0f} ms ({len(p95s)} events).\n"
        f"Server memory: {r['rss_before'] / 1024:.0f} MiB before, {r['rss_with'] / 1024:.0f} MiB with the "
        f"streams open: **{per_stream:.0f} KiB per stream**. Streams still open after the clients left: "
        f"{r['left_open']}.\n"
    )


def main():
    args = parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per stream, here and in the server
    if args.hold:
        asyncio.run(hold(int(args.hold), json.loads(os.environ["BENCH_TOKENS"])))
        return
    if args.postgres:
        from bench.databases import temporary_postgres

        databases = temporary_postgres()
    else:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        db = args.data_dir / "streams.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        databases = nullcontext(f"sqlite:///{db}")
    with databases as url:
        if url is None:
            print("no PostgreSQL server answers; skipped")
            return
        results = measure(args, url)
    database = "PostgreSQL (LISTEN/NOTIFY)" if args.postgres else "SQLite (polled every 0.25 s)"
    text = report(results, database)
    print(text)
    if not args.no_write:
        from bench.report import write_section

        write_section(
            "streams-postgres" if args.postgres else "streams",
            ("" if args.postgres else _INTRO) + text,
        )


_INTRO = """## Live streams (`bench/streams.py`)

One web process (`manage.py web`, its event loop, DEBUG off) holds the streams; another process opens them (20 per
principal, the default limit, from 50 viewer tokens) and notes when each event arrives. `/api/me/` is
measured with 4 clients (a new connection per request) before the streams open and after they close (the
baseline), and while they are open. Events are made through the API, 0.5 to 1.5 s apart (so at varied
moments of SQLite's polling).

"""


if __name__ == "__main__":
    main()
