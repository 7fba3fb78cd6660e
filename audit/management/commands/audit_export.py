from django.core.management.base import BaseCommand, CommandError

from audit import mirror


class Command(BaseCommand):
    help = "Rebuild the JSON Lines mirror of the audit trail from the database, or append what follows --since."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=int, metavar="SEQ", help="append only the events after SEQ")

    def handle(self, *args, since, **options):
        path = mirror.log_path()
        if path is None:
            raise CommandError("CONTROLPLANE_AUDIT_LOG is empty: the JSON Lines mirror is off.")
        try:
            written = mirror.rebuild() if since is None else mirror.catch_up(since=since)
        except OSError as e:
            raise CommandError(f"cannot write {path}: {e.strerror}") from e
        verb = "rebuilt with" if since is None else f"appended after {since}:"
        self.stdout.write(f"{path} {verb} {written} events")
