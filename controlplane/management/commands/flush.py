"""Django's flush, able to empty the append-only tables (audit events, run log entries): it lifts their
triggers for the flush, and they are put back with the post-migrate signal that every flush sends. Emptying the
database is an administrator's act outside the trail (tests and development use it)."""

from django.core.management.commands import flush
from django.db import connections

from controlplane import triggers


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        triggers.uninstall(connection)
        try:
            return super().handle(**options)
        finally:
            triggers.ensure(connection)  # also when post-migrate is inhibited
