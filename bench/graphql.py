"""Benchmark: the services index through GraphQL and through REST, under the production server, side by side.

Usage: python -m bench.graphql [--sizes 2000x3x50,20000x3x10] [--seconds 8] [--rounds 3] [--concurrency 4]
                              [--workers 2] [--data-dir var/bench] [--no-write]
       python -m bench.graphql --profile [--sizes 2000x3x50] [--requests 400]   (in-process, no server)

At each size, on bench/api.py's seeded SQLite database (var/bench/api-*.sqlite3, seeded by `manage.py seed` the
first time; --data-dir as there), `manage.py web` (gunicorn, DEBUG off, as bench/api.py serves it) is started
twice: with the index cache on, then off (CONTROLPLANE_INDEX_CACHE=0). Each run measures, rounds alternating,
against the same server and data:

- the floors: `GET /api/me/` and GraphQL's `{ me { actor role authMethod } }`;
- the services index: `GET /api/services/index/?pageSize=50` and `servicesIndex(first: 50)` asking for every
  field REST returns (the page's `next` as `pageInfo { hasNextPage endCursor }`);
- in the cache-on run also a nested document, services(first: 50) with their environments and what runs in
  each (`Service.currentReleases`), against the closest REST request, `GET /api/services/?pageSize=50` (which
  names each service's environments but not their releases: REST needs more requests for those).

The index cache is the one bench/api.py uses: per process (LocMemCache) unless REDIS_URL names a Redis, which
the servers then share (`--redis URL` sets it). The figures go into docs/performance.md between the `graphql`
markers. --profile serves nothing: it times the two index pages in-process (Django's test client, DEBUG off),
alternating, and prints a pyinstrument call tree of the GraphQL one.
"""

import argparse
import json
import os
import secrets
import statistics
import time

from bench.api import (
    BY,
    DEFAULT_SIZES,
    add_data_dir,
    label,
    parse_size,
    seeded_database,
    server_env,
)
from bench.loop import Target, compare
from bench.servers import web_server

AIM = 0.8  # GraphQL's requests/s over REST's, for the services index

RELEASE = "id version sha status"
INDEX_DOCUMENT = f"""query Index {{
  servicesIndex(first: 50) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{
      node {{
        id name repo adapters {{ deployments }}
        environments {{
          id name
          latestRelease {{ {RELEASE} createdAt }}
          currentRelease {{ {RELEASE} activatedAt }}
        }}
        incidents {{ open {{ low medium high critical }} highestOpenSeverity }}
        auditTail {{ seq ts action }}
      }}
    }}
  }}
}}"""
NESTED_DOCUMENT = """query Nested {
  services(first: 50) {
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id name repo adapters { deployments } archivedAt createdAt
        environments { id name }
        currentReleases { id version sha status activatedAt environment { id name } }
      }
    }
  }
}"""
ME_DOCUMENT = "query Me { me { actor role authMethod } }"


def body(document: str) -> bytes:
    return json.dumps({"query": document}).encode()


# Targets: key -> (label, path, POST body or None for a GET).
TARGETS = {
    "rest-floor": ("REST floor: `GET /api/me/`", "/api/me/", None),
    "gql-floor": ("GraphQL floor: `{ me { … } }`", "/graphql/", body(ME_DOCUMENT)),
    "rest-index": ("REST index: `GET /api/services/index/?pageSize=50`", "/api/services/index/?pageSize=50", None),
    "gql-index": ("GraphQL index: `servicesIndex(first: 50)`, every field", "/graphql/", body(INDEX_DOCUMENT)),
    "rest-services": ("REST services list: `GET /api/services/?pageSize=50`", "/api/services/?pageSize=50", None),
    "gql-nested": ("GraphQL services → environments, currentReleases (50)", "/graphql/", body(NESTED_DOCUMENT)),
}
CACHED_RUN = ("rest-floor", "gql-floor", "rest-index", "gql-index", "rest-services", "gql-nested")
UNCACHED_RUN = ("rest-floor", "gql-floor", "rest-index", "gql-index")
# The ratios reported: (GraphQL target, REST target, what)
PAIRS = (
    ("gql-floor", "rest-floor", "floor (`me`)"),
    ("gql-index", "rest-index", "services index"),
    ("gql-nested", "rest-services", "nested services page vs the services list"),
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"as bench/api.py (default {DEFAULT_SIZES})")
    parser.add_argument("--seconds", type=float, default=8.0, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="web processes (manage.py web --workers)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", ""), help="REDIS_URL for the servers")
    add_data_dir(parser)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    parser.add_argument("--profile", action="store_true", help="in-process timings and a call tree; no server")
    parser.add_argument("--requests", type=int, default=400, help="--profile: of each target, alternating")
    args = parser.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    return args


def server_run(args, env, token, keys) -> dict:
    """Serve `env`'s database and measure `keys` (bench/loop.py); per key (median req/s, p50 ms, p95 ms)."""
    with web_server(env, args.workers) as server:
        figures = compare(
            {"ours": server},
            {key: Target(*TARGETS[key]) for key in keys},
            token,
            seconds=args.seconds,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )
    return {key: (f.rate, f.p50, f.p95) for (_, key), f in figures.items()}


def bench_size(args, size, env, token) -> dict:
    db = seeded_database(size, env, args.data_dir)
    env = {**env, "DATABASE_URL": f"sqlite:///{db}"}
    loads = [os.getloadavg()[0]]
    print(f"{label(size)}: load average {loads[-1]:.2f} before the cache-on run", flush=True)
    cached = server_run(args, env, token, CACHED_RUN)
    loads.append(os.getloadavg()[0])
    print(f"{label(size)}: load average {loads[-1]:.2f} before the cache-off run", flush=True)
    uncached = server_run(args, {**env, "CONTROLPLANE_INDEX_CACHE": "0"}, token, UNCACHED_RUN)
    runs = {"on": cached, "off": uncached}
    for run, rows in runs.items():
        for key, (rps, p50, p95) in rows.items():
            print(f"  cache {run:3} {TARGETS[key][0]:60} {rps:8.1f} req/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
        for gql, rest, what in PAIRS:
            if gql in rows and rest in rows:
                print(f"  cache {run:3} GraphQL/REST, {what}: {rows[gql][0] / rows[rest][0]:.2f}", flush=True)
    return {"runs": runs, "loads": loads}


def section(args, results, cache_name) -> str:
    sizes = list(results)
    head = "| cache | target | " + " | ".join(f"{label(s)}: req/s | p50 ms | p95 ms" for s in sizes) + " |"
    rule = "| --- | --- |" + " ---: | ---: | ---: |" * len(sizes)
    lines = [head, rule]
    for run, keys in (("on", CACHED_RUN), ("off", UNCACHED_RUN)):
        for key in keys:
            cells = []
            for s in sizes:
                rps, p50, p95 = results[s]["runs"][run][key]
                cells.append(f"{rps:,.1f} | {p50:.1f} | {p95:.1f}")
            lines.append(f"| {run} | {TARGETS[key][0]} | " + " | ".join(cells) + " |")
    ratios = ["| cache | GraphQL / REST, requests/s | " + " | ".join(label(s) for s in sizes) + " |"]
    ratios.append("| --- | --- |" + " ---: |" * len(sizes))
    for run in ("on", "off"):
        for gql, rest, what in PAIRS:
            if gql not in results[sizes[0]]["runs"][run]:
                continue
            cells = []
            for s in sizes:
                rows = results[s]["runs"][run]
                ratio = rows[gql][0] / rows[rest][0]
                cells.append(f"**{ratio:.2f}**" if gql == "gql-index" else f"{ratio:.2f}")
            lines_what = what + (f" (aim ≥ {AIM})" if gql == "gql-index" else "")
            ratios.append(f"| {run} | {lines_what} | " + " | ".join(cells) + " |")
    verdicts = []
    for run in ("on", "off"):
        shares = [results[s]["runs"][run]["gql-index"][0] / results[s]["runs"][run]["rest-index"][0] for s in sizes]
        met = "met" if all(x >= AIM for x in shares) else "not met"
        verdicts.append(f"cache {run}: {', '.join(f'{x:.2f}' for x in shares)} ({met})")
    loads = "; ".join(f"{label(s)}: {', '.join(f'{x:.1f}' for x in results[s]['loads'])}" for s in sizes)
    return (
        "### Measured (`bench/graphql.py`)\n\n"
        f"`manage.py web` (DEBUG off), {args.workers} web processes, SQLite, bench/api.py's databases "
        f"(services {BY} environments {BY} releases per service and environment); the index cache {cache_name}. "
        f"{args.concurrency} concurrent clients on the same machine, a new connection per request, GraphQL as "
        f"`POST /graphql/` with a JSON body; median of {args.rounds} rounds of {args.seconds:g} s per target, "
        "rounds alternating, all targets of a run against the same server and data. Two server runs per size, the "
        "index cache on, then off (CONTROLPLANE_INDEX_CACHE=0).\n\n"
        + "\n".join(lines)
        + "\n\n"
        + "\n".join(ratios)
        + "\n\n"
        + f"The services index through GraphQL against REST, requests/s (aim ≥ {AIM}): {'; '.join(verdicts)}. "
        f"The machine's load average (1 min) before each server run, cache on then off: {loads} "
        f"({os.cpu_count()} CPUs; the clients share them with the server).\n"
    )


# --- in-process profile ---


def profile(args, env, token) -> None:
    """Both index pages through Django's test client, DEBUG off as under the server (with DEBUG on,
    graphene-django adds its debug middleware to every field), alternating; medians; the GraphQL page's parts
    timed one by one; a pyinstrument call tree of it."""
    db = seeded_database(args.sizes[0], env, args.data_dir)
    os.environ.update({**env, "DATABASE_URL": f"sqlite:///{db}", "ALLOWED_HOSTS": "testserver"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    import orjson
    from django.test import Client
    from graphql import execute, parse, specified_rules, validate

    from controlplane.graphql.limits import refusals
    from controlplane.graphql.plain import PlainExecutionContext
    from controlplane.graphql.schema import schema
    from controlplane.identity.context import acting_as
    from overview.schema import Query

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    targets = {key: TARGETS[key] for key in ("rest-floor", "gql-floor", "rest-index", "gql-index")}

    def once(key):
        _, path, payload = targets[key]
        post = client.post
        response = client.get(path) if payload is None else post(path, payload, content_type="application/json")
        assert response.status_code == 200 and b'"errors"' not in response.content[:20], response.content[:300]

    def timed(call, n) -> list[float]:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return times

    def median_ms(call, n=200) -> float:
        timed(call, 20)
        return statistics.median(timed(call, n)) * 1000

    for key in targets:
        timed(lambda key=key: once(key), 30)  # warm up
    samples = {key: [] for key in targets}
    for _ in range(max(1, args.requests // 50)):
        for key in targets:
            samples[key] += timed(lambda key=key: once(key), 50)
    cache = "on" if os.environ.get("CONTROLPLANE_INDEX_CACHE", "1") != "0" else "off"
    print(f"{label(args.sizes[0])}, in-process, index cache {cache}, median of {len(samples['gql-index'])}:")
    for key, times in samples.items():
        print(f"  {targets[key][0]:60} {statistics.median(times) * 1000:6.2f} ms")

    graphql_schema, document = schema.graphql_schema, parse(INDEX_DOCUMENT)
    with acting_as("bench"):
        data = execute(graphql_schema, document, execution_context_class=PlainExecutionContext).data
        parts = {
            "parse the document": median_ms(lambda: parse(INDEX_DOCUMENT)),
            "validate it by GraphQL's rules (specified_rules)": median_ms(
                lambda: validate(graphql_schema, document, specified_rules)
            ),
            "execute: the servicesIndex resolver alone (2 queries, 50 entries)": median_ms(
                lambda: Query.resolve_services_index(None, None, first=50)
            ),
            "the depth and cost limits (read on every request)": median_ms(
                lambda: refusals(graphql_schema, document, None, document.definitions[0])
            ),
            "execute, as the view does: the resolver, then the entries projected": median_ms(
                lambda: execute(graphql_schema, document, execution_context_class=PlainExecutionContext)
            ),
            "execute, field by field (graphql-core's own completion, for comparison)": median_ms(
                lambda: execute(graphql_schema, document)
            ),
            "encode the response (orjson)": median_ms(lambda: orjson.dumps({"data": data})),
        }
    print(f"The GraphQL index's parts, medians ({fields(data):,} fields in the response):")
    for what, ms in parts.items():
        print(f"  {what:75} {ms:6.2f} ms")

    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    with profiler:
        timed(lambda: once("gql-index"), 200)
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def fields(value) -> int:
    """How many fields a GraphQL response's data holds (each key of each object, at every level)."""
    if isinstance(value, dict):
        return len(value) + sum(fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(fields(v) for v in value)
    return 0


def main():
    args = parse_args()
    token = secrets.token_urlsafe(24)
    env = {**server_env(token), "REDIS_URL": args.redis}
    env.pop("DATABASE_URL", None)  # each size its own seeded database
    if args.profile:
        profile(args, env, token)
        return
    cache_name = f"in Redis ({args.redis}), shared by the web processes" if args.redis else "per process (LocMemCache)"
    results = {size: bench_size(args, size, env, token) for size in args.sizes}
    if not args.no_write:
        from bench.report import write_section

        write_section("graphql", section(args, results, cache_name))


if __name__ == "__main__":
    main()
