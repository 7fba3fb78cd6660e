"""Profile the 50-row release list in-process, against the framework's floor `/api/me/`.

Usage: DATABASE_URL=sqlite:///var/profile/p200.sqlite3 python -m bench.profile_releases [--service svc-seed-00100]
                                [--url PATH] [--requests 500] [--reconnect] [--profile] [--explain]
       python -m bench.profile_releases --size 200x3x50 [--data-dir var/bench] ...

--size profiles bench/api.py's database of that size instead of DATABASE_URL's (seeding it the first time).

--url profiles another path the same way (the services index: CONTROLPLANE_INDEX_CACHE=0 to see it computed; the
dashboard's index page, `--url /`: CONTROLPLANE_INDEX_PAGE_CACHE=0 likewise).

On a database `manage.py seed` filled. Runs the release list and `/api/me/` alternately through Django's
test client with a viewer dev token (no server, no network), and prints the median of each and their
ratio (wall clock, then CPU time, steadier on a shared machine), the list's SQL queries, and with --explain
the page query's plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL); --profile adds a pyinstrument
call tree of the list (pyinstrument is in the `dev` extras). The test client keeps the database connection
between requests; --reconnect closes it after each one, as the server does on SQLite (a connection per
request), which the floor (no query) never pays.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench.api import add_data_dir, parse_size, seeded_database

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "profile-viewer-token-0123456789"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", help="serviceId to list (default: the middle seeded service)")
    parser.add_argument("--url", help="profile this path instead, e.g. /api/services/index/")
    parser.add_argument("--requests", type=int, default=500, help="of each target, alternating")
    parser.add_argument("--reconnect", action="store_true", help="a new database connection per request")
    parser.add_argument("--profile", action="store_true", help="a pyinstrument call tree of the list")
    parser.add_argument("--explain", action="store_true", help="the plan of each query of the list")
    parser.add_argument("--size", type=parse_size, help="bench/api.py's database of this size, e.g. 200x3x50")
    add_data_dir(parser)
    return parser.parse_args()


def setup(args):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ.setdefault("DEBUG", "1")  # before seeding too: its manage.py runs read it
    if args.size:
        db = seeded_database(args.size, {**os.environ, "CONTROLPLANE_AUDIT_LOG": ""}, args.data_dir)
        os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["CONTROLPLANE_DEV_MODE"] = "1"
    os.environ["CONTROLPLANE_DEV_TOKENS"] = json.dumps({TOKEN: {"id": "profile", "role": "viewer"}})
    os.environ.setdefault("CONTROLPLANE_AUDIT_LOG", str(ROOT / "var" / "profile" / "audit.log"))
    import django

    django.setup()


def timed(client, url, n, reconnect=False, cpu=None) -> list[float]:
    """Wall-clock seconds of each of `n` requests; their CPU seconds appended to `cpu` when given."""
    from django.db import connections

    times = []
    for _ in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        if reconnect:
            connections.close_all()
        times.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 200, response.content[:200]
    return times


def explain(connection, sql: str, params) -> str:
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        rows = cursor.fetchall()
    return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)


def main():
    args = parse_args()
    setup(args)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from services.models import Service

    service = args.service
    if service is None:
        ids = list(Service.objects.order_by("id").values_list("id", flat=True))
        service = ids[len(ids) // 2]
    lists, floor = args.url or f"/api/releases/?serviceId={service}", "/api/me/"
    client = Client()
    response = client.get(lists, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    rows = f"{len(response.json()['results'])} rows, " if response["Content-Type"] == "application/json" else ""
    print(f"{connection.vendor}, {lists}: {rows}{len(response.content):,} bytes")

    with CaptureQueriesContext(connection) as captured:
        client.get(lists, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    print(f"{len(captured)} queries")
    for query in captured.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:300]}")
    if args.explain and args.url:
        for query in captured.captured_queries:
            print("plan:\n" + explain(connection, query["sql"], ()))
    elif args.explain:
        # Plans of the list's own queries, re-run through the ORM's SQL with the parameters bound again.
        from releases.api import ReleaseViewSet

        queryset = ReleaseViewSet.queryset.filter(service_id=service).order_by(*ReleaseViewSet.ordering)[:51]
        sql, params = queryset.query.sql_with_params()
        print("plan of the page query:\n" + explain(connection, sql, params))

    timed(client, lists, 50), timed(client, floor, 50)  # warm up
    list_times, floor_times, list_cpu, floor_cpu = [], [], [], []
    for _ in range(max(1, args.requests // 50)):
        list_times += timed(client, lists, 50, args.reconnect, list_cpu)
        floor_times += timed(client, floor, 50, args.reconnect, floor_cpu)
    how = "a new connection per request" if args.reconnect else "one connection"
    for what, (listed, floors) in {"median": (list_times, floor_times), "CPU": (list_cpu, floor_cpu)}.items():
        list_ms, floor_ms = statistics.median(listed) * 1000, statistics.median(floors) * 1000
        print(f"{what} of {len(listed)} ({how}): list {list_ms:.2f} ms, floor {floor_ms:.2f} ms", end="")
        print(f", ratio {floor_ms / list_ms:.2f}")

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        with profiler:
            timed(client, lists, 200, args.reconnect)
        print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
