from django.core.management.base import BaseCommand, CommandError

from audit.verification import verify


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain. Exits 0 when intact, 1 naming the first bad sequence number."

    def handle(self, *args, **options):
        verdict = verify()
        if verdict.broken_at is not None:
            raise CommandError(f"audit trail broken at sequence {verdict.broken_at}: {verdict.reason}.")
        self.stdout.write(f"audit trail intact: {verdict.events} events, last hash {verdict.last_hash}")
