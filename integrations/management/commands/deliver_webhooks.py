"""Send every webhook delivery that is due now, one after another, and exit: for an operator who wants the
outbox emptied without waiting for the worker (which sends them on its own), or a host that runs no worker."""

from django.core.management.base import BaseCommand

from controlplane.identity.context import acting_as
from integrations import delivery


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        with acting_as("deliver_webhooks"):
            sent = delivery.deliver_due()
        for item in sent:
            self.stdout.write(f"{item.id} {item.event_type}: {item.state} ({item.last_status or item.last_error})")
        self.stdout.write(f"{len(sent)} tries.")
