"""Ten threads changing the control plane at once, on the database DATABASE_URL names.

Run as its own process by test_concurrency.py; prints one JSON line: what went wrong, if anything.
"""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from audit.verification import verify  # noqa: E402
from controlplane.identity.context import acting_as  # noqa: E402
from services.models import Environment  # noqa: E402

THREADS, CHANGES = 10, int(os.environ.get("CHANGES_PER_THREAD", "15"))


def main():
    call_command("migrate", verbosity=0)
    errors, barrier = [], threading.Barrier(THREADS)

    def writer(n):
        try:
            barrier.wait()
            with acting_as(f"writer-{n}"):
                for i in range(CHANGES):
                    env = Environment(name=f"w{n}-{i}")
                    env.save()  # environment.create
                    env.region = f"region-{i}"
                    env.save()  # environment.update
        except Exception as e:  # report every failure a caller would have seen
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    per_actor = {
        actor: AuditEvent.objects.filter(actor=actor).count()
        for actor in (f"system:writer-{n}" for n in range(THREADS))
    }
    verdict = verify()
    print(
        json.dumps(
            {
                "errors": errors,
                "events": len(seqs),
                "gapless": seqs == list(range(1, len(seqs) + 1)),
                "per_actor": per_actor,
                "broken_at": verdict.broken_at,
                "reason": verdict.reason,
            }
        )
    )


if __name__ == "__main__":
    main()
