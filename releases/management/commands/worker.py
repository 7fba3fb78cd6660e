"""The background worker: runs deploys and promotions from the task queue (django-tasks-db's worker
loop), fails runs whose worker died or whose task was lost, on start and periodically, checks connected
environments for drift every CONTROLPLANE_DRIFT_INTERVAL (releases/drift.py), and sends webhooks from the outbox
on a thread pool of their own (integrations/delivery.py)."""

import logging
import threading

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from controlplane.identity.context import acting_as
from controlplane.signals import worker_round, worker_started
from releases import approvals, drift, recovery, runs

logger = logging.getLogger("controlplane.worker")


def recover_logged() -> None:
    try:
        with acting_as("worker"):
            for recovered in recovery.recover():
                logger.warning("run %s marked failed: %s", recovered.run_id, recovered.reason)
            approvals.sweep()
            worker_round.send(sender=None)
    except Exception:  # the worker keeps running whatever recovery meets; the next round retries
        logger.exception("recovery failed")
    finally:
        connections.close_all()


def check_drift_logged() -> None:
    try:
        with acting_as("worker"):
            drift.check_all()
    except Exception:  # the next round retries
        logger.exception("drift check failed")
    finally:
        connections.close_all()


def every(seconds: float, work, stop: threading.Event, name: str) -> None:
    """Run `work` every `seconds` on a thread of its own until `stop` is set."""

    def periodically():
        while not stop.wait(seconds):
            work()

    threading.Thread(target=periodically, name=name, daemon=True).start()


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, batch, verbosity, **options):
        recover_logged()
        stop = threading.Event()
        every(settings.CONTROLPLANE_WORKFLOWS["recoveryIntervalSeconds"], recover_logged, stop, "recovery")
        worker_started.send(sender=None, stop=stop)  # the webhooks' dispatcher starts its thread
        if settings.CONTROLPLANE_DRIFT_INTERVAL_SECONDS:
            every(settings.CONTROLPLANE_DRIFT_INTERVAL_SECONDS, check_drift_logged, stop, "drift")
        try:
            call_command(
                "db_worker",
                queue_name="workflows",
                interval=0.2,
                batch=batch,
                reload=False,
                startup_delay=False,
                worker_id=runs.worker_id()[-64:],  # the same id the runs it claims record (at most 64 here)
                verbosity=verbosity,
            )
        finally:
            stop.set()
