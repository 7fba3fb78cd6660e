from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from services.models import Environment, Service

DEMO_FIXTURE = settings.BASE_DIR / "fixtures" / "demo.json"


class Command(BaseCommand):
    help = "Load the demo data (fixtures/demo.json) into an empty database; leave a database with data alone."

    def handle(self, *args, **options):
        if Service.objects.exists() or Environment.objects.exists():
            self.stdout.write("Database already has services or environments; demo data not loaded.")
            return
        call_command("loaddata", str(DEMO_FIXTURE), verbosity=options["verbosity"])
        self.stdout.write(self.style.SUCCESS("Loaded the demo data."))
