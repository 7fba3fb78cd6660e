"""Recompute the deployment-state read model from history (releases, runs, links, incidents, the audit
trail), in one transaction: which release is current in each environment and what superseded each, one row
per (service, environment), one per service; and the environments' promotion order (services.promotion), which
an UPDATE past the models (raw SQL) leaves behind. Safe at any time; the changes keep both without this."""

import time

from django.core.management.base import BaseCommand

from overview import deployment_state
from services import promotion
from services.models import Environment


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        started = time.perf_counter()
        counts = deployment_state.rebuild()
        promotion.renumber(Environment)
        took = time.perf_counter() - started
        summary = ", ".join(f"{n:,} {what}" for what, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the read models in {took:.1f} s: {summary}."))
