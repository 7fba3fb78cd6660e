import json
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from controlplane.identity import devtokens


class Command(BaseCommand):
    help = "In dev mode: create a demo set of dev tokens if none are configured, and print them with curl examples."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=f"http://127.0.0.1:{settings.PORT}")

    def handle(self, *args, base_url, **options):
        if not devtokens.dev_mode():
            self.stdout.write("Dev mode is off: dev tokens are refused. Sign in with OIDC.")
            return
        tokens = settings.CONTROLPLANE["devTokens"]
        if not tokens:
            tokens = devtokens.demo_set()
            path = settings.DEV_TOKENS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only: the file holds secrets (and var/ is never committed).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(tokens, f, indent=2)
            self.stdout.write(f"Created demo dev tokens in {path}.")
        self.stdout.write(self.style.WARNING("Dev mode: these tokens work only while CONTROLPLANE_DEV_MODE is on."))
        for token, entry in tokens.items():
            self.stdout.write(f"  {entry['role']:<9} {entry['id']:<14} {token}")
        example = next(iter(tokens))
        self.stdout.write("Try:")
        self.stdout.write(f"  curl -H 'Authorization: Bearer {example}' {base_url}/api/me/")
        self.stdout.write(f"  sign in at {base_url}/login/ with any token above (the admin token opens /admin/)")
