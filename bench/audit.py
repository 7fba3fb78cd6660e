"""Benchmark: changes per second with the audit writer on, against the same changes with it off.

Usage: python -m bench.audit [--postgres] [--rounds N] [--changes N] [--no-write]
Runs on a fresh database (a temporary SQLite file, or with --postgres a temporary database on the local
server at 127.0.0.1:5432), alternating rounds with the writer on and off so both see the same machine,
and writes the figures to docs/performance.md.
"""

import argparse
import os
import statistics
import tempfile
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="on a temporary database at 127.0.0.1:5432")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--changes", type=int, default=300, help="changes per round")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.postgres:
        from bench.databases import temporary_postgres

        with temporary_postgres() as url:
            if url is None:
                print("PostgreSQL does not answer on 127.0.0.1:5432: skipped")
                return
            run(args, url)
    else:
        run(args, f"sqlite:///{tempfile.mkdtemp(prefix='cp-bench-')}/bench.sqlite3")


def run(args, database_url):
    tmp = tempfile.mkdtemp(prefix="cp-bench-")
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "1")
    os.environ["CONTROLPLANE_AUDIT_LOG"] = f"{tmp}/control-plane.log"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from audit import writer
    from audit.models import AuditEvent
    from controlplane.identity.context import acting_as
    from releases import lifecycle
    from releases.models import Release
    from services.models import Environment, Service

    call_command("migrate", verbosity=0)

    counter = iter(range(10**9))

    def change_mix(n: int) -> int:
        """n changes an operator makes every day: environments, services, releases, rollouts."""
        done = 0
        while done < n:
            i = next(counter)
            env = Environment(name=f"bench-{i}")
            env.save()
            env.region = "eu-west-1"
            env.save()
            svc = Service(name=f"svc {i}", repo=f"github.com/bench/svc-{i}", deployment_adapters=["k8s"])
            svc.save()
            svc.environments.add(env)
            release = Release(service=svc, environment=env, sha=f"{i:07x}", version="1.0")
            release.save()
            lifecycle.begin_rollout(release)
            lifecycle.activate(release)
            done += 7
        return done

    rates = {"on": [], "off": []}
    with acting_as("bench"):
        change_mix(70)  # warm up caches and the connection
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                (writer.connect if mode == "on" else writer.disconnect)()
                started = time.perf_counter()
                done = change_mix(args.changes)
                rates[mode].append(done / (time.perf_counter() - started))
        writer.connect()
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    database = (
        f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}".strip()
    )
    result = {
        "database": database,
        "off": off,
        "on": on,
        "cost": off / on,
        "events": AuditEvent.objects.count(),
        "rounds": args.rounds,
        "changes": args.changes,
        "mirror": settings.AUDIT_LOG,
    }
    print(
        f"{database}: writer off {off:,.0f} changes/s, on {on:,.0f} changes/s "
        f"-> the trail costs {result['cost']:.2f}x (aim: at most 2x); {result['events']} events written"
    )
    if not args.no_write:
        from bench.report import write_section

        write_section(
            f"audit-{connection.vendor}",
            f"### Audit writer on {database}\n\n"
            f"| | changes/s (median of {args.rounds} rounds x {args.changes}) |\n| --- | ---: |\n"
            f"| writer off (baseline) | {off:,.0f} |\n"
            f"| writer on (event, hash chain, JSON Lines mirror) | {on:,.0f} |\n"
            f"| cost | **{result['cost']:.2f}x** (aim: at most 2x) |\n",
        )


if __name__ == "__main__":
    main()
