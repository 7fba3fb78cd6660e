"""Benchmark: the control plane's web server against the framework's floor, endpoint by endpoint, in one run.

Usage: python -m bench.serving [--size 2000x3x50] [--seconds 8] [--rounds 3] [--concurrency 4] [--workers 2]
                               [--data-dir var/bench] [--no-write]

Two servers, started by this script, serve the same seeded SQLite database (bench/api.py's, var/bench/) with the
same settings (DEBUG off, the API's services index cache off, the dashboard's index page cached as its users get
it: CONTROLPLANE_INDEX_PAGE_CACHE, docs/pages.md) and the same number of processes:

- `manage.py web`: the control plane's server (controlplane/serving.py);
- the reference: the same WSGI application, `controlplane.wsgi`, under gunicorn's sync workers.

For each endpoint, `/healthz`, `/api/me/`, the services index (REST and GraphQL), the release list and the
dashboard's index page, it reports requests/s, latencies and the server's CPU per request on both, and the
ratio of the two (aim ≥ 0.9: the server adds nothing to what the framework costs); and, against the
reference's `/api/me/` (the floor), the shares the issue sets aims for (issue 24). Rounds alternate servers
and endpoints (bench/loop.py).
"""

import argparse
import os
import secrets
import subprocess

from bench.api import BY, MANAGE, add_data_dir, label, parse_size, seeded_database, server_env
from bench.graphql import INDEX_DOCUMENT, body
from bench.loop import Target, compare
from bench.servers import reference_server, web_server

SERVERS = {"ours": "`manage.py web`", "reference": "gunicorn sync"}
SAME_AS_REFERENCE = 0.9  # our server's requests/s over the reference's, every endpoint
API_TOKEN_OVER_DEV_TOKEN = 0.9  # /api/me/ with an API token over a dev token (issue 25)
# Shares of the reference's `/api/me/` floor (requests/s), and GraphQL's index over REST's, on our server.
SHARE_AIMS = {"rest-index": 0.35, "releases": 0.5, "page-index": 0.5}
GRAPHQL_OVER_REST = 0.8


def targets(middle: str, api_token: str) -> dict:
    return {
        "healthz": Target("`GET /healthz`", "/healthz"),
        "me": Target("`GET /api/me/` (the floor)", "/api/me/"),
        "me-api-token": Target("`GET /api/me/` with an API token", "/api/me/", token=api_token),
        "rest-index": Target("services index, REST: `GET /api/services/index/`", "/api/services/index/"),
        "gql-index": Target("services index, GraphQL: `servicesIndex(first: 50)`", "/graphql/", body(INDEX_DOCUMENT)),
        "releases": Target(
            f"release list: `GET /api/releases/?serviceId={middle}`", f"/api/releases/?serviceId={middle}"
        ),
        "page-index": Target("dashboard's index page: `GET /`", "/"),
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default="2000x3x50", help="SERVICESxENVIRONMENTSxRELEASES")
    parser.add_argument("--seconds", type=float, default=5.0, help="per target per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="processes of each server")
    add_data_dir(parser)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    return parser.parse_args()


def verdict(value: float, aim: float) -> str:
    return f"**{value:.2f}** ({'met' if value >= aim else 'not met'}: aim ≥ {aim})"


def run(args) -> tuple[dict, dict, float]:
    token = secrets.token_urlsafe(24)
    env = server_env(token)
    db = seeded_database(args.size, env, args.data_dir)
    # The API's index computed; the page as its users get it, its content cached under the audit trail's head.
    caches = {"CONTROLPLANE_INDEX_CACHE": "0", "CONTROLPLANE_INDEX_PAGE_CACHE": "1"}
    env = {**env, "DATABASE_URL": f"sqlite:///{db}", **caches}
    middle = f"svc-seed-{args.size[0] // 2:05d}"
    api_token = issue_api_token(env)
    load = os.getloadavg()[0]
    with web_server(env, args.workers) as ours, reference_server(env, args.workers) as reference:
        figures = compare(
            {"ours": ours, "reference": reference},
            targets(middle, api_token),
            token,
            seconds=args.seconds,
            rounds=args.rounds,
            concurrency=args.concurrency,
        )
    return figures, targets(middle, api_token), load


def issue_api_token(env: dict) -> str:
    """An API token (issue 25) on the benchmarked database, issued as its users do (tokens.lifecycle), by a
    `manage.py shell` acting as the system: a viewer's, for a day."""
    script = (
        "from datetime import timedelta; from django.utils import timezone; from tokens import lifecycle; "
        "print(lifecycle.issue('bench', 'viewer', timezone.now() + timedelta(days=1))[1])"
    )
    done = subprocess.run([*MANAGE, "shell", "-c", script], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def report(args, figures, targets, load) -> str:
    rows = [
        "| endpoint | `manage.py web` req/s | p50 ms | p95 ms | CPU ms/req | gunicorn sync req/s | p50 ms | p95 ms | "
        "CPU ms/req | ratio, req/s | ratio, CPU |",
        "| --- |" + " ---: |" * 10,
    ]
    for key, target in targets.items():
        ours, ref = figures["ours", key], figures["reference", key]
        rows.append(
            f"| {target.label} | {ours.rate:,.1f} | {ours.p50:.1f} | {ours.p95:.1f} | {ours.cpu:.2f} | {ref.rate:,.1f} "
            f"| {ref.p50:.1f} | {ref.p95:.1f} | {ref.cpu:.2f} | **{ours.share(ref):.2f}** | {ref.cpu / ours.cpu:.2f} |"
        )
    floor = figures["reference", "me"]
    worst = min(targets, key=lambda key: figures["ours", key].share(figures["reference", key]))
    lines = [
        f"- Every endpoint against the same endpoint under gunicorn sync: lowest {targets[worst].label}, "
        + verdict(figures["ours", worst].share(figures["reference", worst]), SAME_AS_REFERENCE)
        + ".",
        *(
            f"- {targets[key].label} against the floor (gunicorn sync, `/api/me/`): "
            + verdict(figures["ours", key].share(floor), aim)
            + "."
            for key, aim in SHARE_AIMS.items()
        ),
        "- GraphQL's `servicesIndex` against REST's index, on `manage.py web`: "
        + verdict(figures["ours", "gql-index"].share(figures["ours", "rest-index"]), GRAPHQL_OVER_REST)
        + ".",
        "- `/api/me/` with an API token (kept by the process a minute; docs/architecture.md) against a dev token's: "
        + verdict(figures["ours", "me-api-token"].share(figures["ours", "me"]), API_TOKEN_OVER_DEV_TOKEN)
        + ".",
    ]
    return (
        "## Serving (`bench/serving.py`)\n\n"
        f"`manage.py web` and the same WSGI application under gunicorn's sync workers (the reference, "
        f"`controlplane.wsgi`), {args.workers} processes each, started together on the same SQLite database "
        f"({label(args.size)}: services {BY} environments {BY} releases per service and environment), DEBUG off, "
        "the API's services index cache off (CONTROLPLANE_INDEX_CACHE=0), the dashboard's index page cached as its "
        f"users get it (CONTROLPLANE_INDEX_PAGE_CACHE=1). {args.concurrency} concurrent clients on the same machine, "
        f"a new connection per request; {args.rounds} rounds of {args.seconds:g} s per endpoint, each endpoint on "
        "both servers in turn; requests/s and CPU are the rounds' medians, and each requests/s ratio (its column and "
        "the aims below) the median of the rounds' ratios, each between bursts of the same round. "
        "CPU ms/req is the CPU time the server's processes spent per request, "
        "which the clients sharing the machine do not distort; its ratio is the reference's over ours. "
        f"Load average (1 min) before the run: {load:.1f} on {os.cpu_count()} CPUs.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(lines)
        + "\n"
    )


def main():
    args = parse_args()
    figures, measured, load = run(args)
    text = report(args, figures, measured, load)
    print(text, flush=True)
    if not args.no_write:
        from bench.report import write_section

        write_section("serving", text)


if __name__ == "__main__":
    main()
