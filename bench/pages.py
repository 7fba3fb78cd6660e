"""Benchmark: the dashboard's pages under the production server, against the floor, in the same run.

Usage: python -m bench.pages [--sizes 2000x3x50] [--seconds 8] [--rounds 3] [--concurrency 4] [--workers 2]
                             [--data-dir var/bench] [--no-write]

At each size, on bench/api.py's seeded SQLite database (var/bench/api-*.sqlite3, seeded by `manage.py seed` the
first time; --data-dir as there), `manage.py web` (DEBUG off) is started once and measured, rounds
alternating:

- the floors: `GET /healthz` (no credentials, no query) and `GET /api/me/` (the bearer token, no query);
- the services index, `GET /` (50 services a page, one column per environment, the summary tiles; its content
  cached under the audit trail's head, as its users get it);
- a service's page, `GET /services/<id>/` (the first service; its charts over 30 days);
- a release's page, `GET /releases/<id>/` (the first service's latest release, its workflow timeline).

The pages are read with the bench's viewer token as `Authorization: Bearer`, which the pages accept like a
signed-in session. The figures go into docs/performance.md between the `pages` markers.
"""

import argparse
import json
import secrets

from bench.api import BY, add_data_dir, get, label, parse_size, seeded_database, server_env
from bench.loop import Target, compare
from bench.servers import web_server

FLOORS = ("healthz", "me")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000x3x50", help="services x environments x releases, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="web processes (manage.py web --workers)")
    add_data_dir(parser)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    return args


def targets(port, token) -> dict:
    """key -> (label, path), the service and release found through the API."""
    _, body = get(port, "/api/services/?pageSize=1", token)
    service = json.loads(body)["results"][0]["id"]
    _, body = get(port, f"/api/releases/?serviceId={service}&pageSize=1", token)
    release = json.loads(body)["results"][0]["id"]
    return {
        "healthz": ("floor: `GET /healthz`", "/healthz"),
        "me": ("floor: `GET /api/me/`", "/api/me/"),
        "index": ("services index: `GET /`", "/"),
        "service": ("service page: `GET /services/<id>/`", f"/services/{service}/"),
        "release": ("release page: `GET /releases/<id>/`", f"/releases/{release}/"),
    }


def bench_size(args, size, env, token) -> dict:
    db = seeded_database(size, env, args.data_dir)
    env = {**env, "DATABASE_URL": f"sqlite:///{db}"}
    with web_server(env, args.workers) as server:
        paths = targets(server.port, token)
        figures = compare(
            {"ours": server},
            {key: Target(what, path) for key, (what, path) in paths.items()},
            token,
            seconds=args.seconds,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )
    result = {}
    for (_, key), f in figures.items():
        result[key] = (paths[key][0], f.rate, f.p50, f.p95)
        print(f"  {label(size)} {paths[key][0]:45} {f.rate:8.1f} req/s  p50 {f.p50:6.1f} ms", flush=True)
    return result


def section(args, results) -> str:
    lines = []
    for size, rows in results.items():
        me = rows["me"][1]
        lines += [
            f"**{label(size)}** (services {BY} environments {BY} releases per service and environment)",
            "",
            "| target | req/s | p50 ms | p95 ms | of the `/api/me/` floor |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for what, rps, p50, p95 in rows.values():
            lines.append(f"| {what} | {rps:,.1f} | {p50:.1f} | {p95:.1f} | {rps / me:.2f} |")
        lines.append("")
    return (
        "### Measured (`bench/pages.py`)\n\n"
        f"`manage.py web` (DEBUG off), {args.workers} web processes, SQLite, bench/api.py's databases; "
        f"{args.concurrency} concurrent clients on the same machine, a new connection per request, the viewer's "
        f"bearer token; median of {args.rounds} rounds of {args.seconds:g} s per target, rounds alternating, all "
        "against the same server and data. The index's content is cached under the audit trail's head "
        '(CONTROLPLANE_INDEX_PAGE_CACHE, on: docs/pages.md, "The index, cached"); the other pages are rendered '
        "on every request.\n\n" + "\n".join(lines)
    )


def main():
    args = parse_args()
    token = secrets.token_urlsafe(24)
    env = server_env(token)
    env.pop("DATABASE_URL", None)
    results = {size: bench_size(args, size, env, token) for size in args.sizes}
    if not args.no_write:
        from bench.report import write_section

        write_section("pages", section(args, results))


if __name__ == "__main__":
    main()
