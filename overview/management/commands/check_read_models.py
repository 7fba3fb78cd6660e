"""Compare the stored deployment-state read model with a recomputation from history. Exits 0 when they
agree; otherwise prints the first difference (and how many there are) and exits 1.
`manage.py rebuild_read_models` repairs it."""

from django.core.management.base import BaseCommand, CommandError

from overview import deployment_state


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def handle(self, *args, **options):
        found = deployment_state.differences()
        if found:
            first, more = found[0], len(found) - 1
            others = f" ({more:,} more difference{'s' if more != 1 else ''})" if more else ""
            raise CommandError(
                f"the read models differ from history: {first}{others}. "
                "`manage.py rebuild_read_models` recomputes them.",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS("The read models match history."))
