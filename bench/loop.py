"""The one measuring loop of the HTTP benchmarks (bench/api.py, graphql.py, pages.py, serving.py).

Clients on threads of this process send requests to a running server, a new connection per request (as
scripts and browsers behind a proxy do), for a number of seconds per target; every target of every server is
measured in each round, each target on every server in turn, so a change in the machine's load falls on all
of them alike; a share of another target's rate is the median of the rounds' ratios (Figures.share).
Besides requests/s and latencies, each burst reads the CPU time the server's processes spent in it: CPU per
request is the cost of serving, and it stays comparable when the clients or other work on this shared machine
slow everything down.
"""

import http.client
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    label: str
    path: str
    body: bytes | None = None  # POSTed as JSON when given (GraphQL)
    token: str | None = None  # sent instead of the run's token (an API token's lookup, against a dev token's)


@dataclass(frozen=True)
class Figures:
    rate: float  # requests/s, median of the rounds
    p50: float  # ms, over every request of every round
    p95: float
    cpu: float  # the server's CPU ms per request, median of the rounds
    rates: tuple = ()  # requests/s of each round

    def share(self, floor: "Figures") -> float:
        """This target's requests/s over `floor`'s: the median of the rounds' ratios, each taken between two
        bursts of the same round (a minute apart at most), so that the shared machine's slower and faster
        minutes fall on both sides of a ratio rather than on one median alone."""
        if self.rates and len(self.rates) == len(floor.rates):
            return statistics.median(mine / theirs for mine, theirs in zip(self.rates, floor.rates, strict=True))
        return self.rate / floor.rate


def request(port: int, target: Target, token: str | None) -> tuple[int, bytes]:
    headers = {"Connection": "close"}
    token = target.token or token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if target.body is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET" if target.body is None else "POST", target.path, target.body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check(port: int, target: Target, token: str | None) -> bytes:
    """One request, which must answer 200 (and, for GraphQL, without errors): the bench stops otherwise."""
    status, body = request(port, target, token)
    if status != 200 or (target.body is not None and b'"errors"' in body[:20]):
        raise SystemExit(f"{target.label} ({target.path}): {status} {body[:300]!r}")
    return body


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` and of its children (a server's worker processes)."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a worker that was just replaced
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def burst(port: int, target: Target, token: str | None, seconds: float, concurrency: int):
    """`concurrency` clients requesting `target` for `seconds`: (requests/s, latencies in s)."""
    latencies, failures, lock = [], [], threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        mine = []
        while True:  # one request at least, however late a busy machine starts the thread
            started = time.perf_counter()
            status, _ = request(port, target, token)
            mine.append(time.perf_counter() - started)
            if status != 200:
                failures.append(status)
            if time.perf_counter() >= stop:
                break
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{target.label} ({target.path}): {len(failures)} failed requests (status {failures[0]})")
    return len(latencies) / (time.perf_counter() - began), latencies


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # the process whose tree serves (for its CPU time)


def compare(servers: dict, targets: dict, token, *, seconds, rounds, concurrency) -> dict:
    """Every target on every server (`servers`: name -> Server), each checked and warmed up first, then
    `rounds` rounds, each target on every server in turn. Returns {(server name, target key): Figures}."""
    for server in servers.values():
        for target in targets.values():
            check(server.port, target, token)
            burst(server.port, target, token, min(1.0, seconds), concurrency)
    samples = {(name, key): ([], [], []) for name in servers for key in targets}
    for _ in range(rounds):
        for key, target in targets.items():  # each target on every server in turn: the pairs a burst apart
            for name, server in servers.items():
                before = cpu_seconds(server.pid)
                rate, latencies = burst(server.port, target, token, seconds, concurrency)
                rates, all_latencies, cpu = samples[name, key]
                cpu.append((cpu_seconds(server.pid) - before) * 1000 / len(latencies))
                rates.append(rate)
                all_latencies.extend(latencies)
    figures = {}
    for each, (rates, latencies, cpu) in samples.items():
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
        figures[each] = Figures(
            statistics.median(rates), q[49] * 1000, q[94] * 1000, statistics.median(cpu), tuple(rates)
        )
    return figures
