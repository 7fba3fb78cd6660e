import json
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from controlplane.identity import devtokens
from controlplane.identity.roles import Role, needed


class Command(BaseCommand):
    help = "In dev mode: create a demo set of dev tokens if none are configured, and print them with curl examples."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=f"http://127.0.0.1:{settings.PORT}")
        parser.add_argument(
            "--role",
            choices=[str(role) for role in Role],
            help="Print only the demo token of this role, bare, for a script: "
            "export CONTROLPLANE_TOKEN=$(python manage.py dev_tokens --role deployer)",
        )

    def handle(self, *args, base_url, role, **options):
        if not devtokens.dev_mode():
            if role:
                raise CommandError("Dev mode is off: dev tokens are refused. Sign in with OIDC.")
            self.stdout.write("Dev mode is off: dev tokens are refused. Sign in with OIDC.")
            return
        tokens = settings.CONTROLPLANE["devTokens"]
        path = settings.DEV_TOKENS_FILE
        if not tokens:
            tokens = devtokens.demo_set()
            path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only: the file holds secrets (and var/ is never committed).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(tokens, f, indent=2)
            if not role:
                self.stdout.write(f"Created demo dev tokens in {path}.")
        # Only the tokens this command generated (the demo set in its own file) are printed; tokens an
        # operator configured (CONTROLPLANE_DEV_TOKENS) are theirs to know, and stay out of terminals and logs.
        generated = generated_tokens(path)

        def generated_for(wanted: str) -> str | None:
            return next((t for t, entry in tokens.items() if entry["role"] == wanted and t in generated), None)

        if role:
            if generated_for(role) is None:
                raise CommandError(f"No {role} token to print: configured ones (CONTROLPLANE_DEV_TOKENS) stay unshown.")
            self.stdout.write(generated_for(role))
            return
        self.stdout.write(self.style.WARNING("Dev mode: these tokens work only while CONTROLPLANE_DEV_MODE is on."))
        for token, entry in tokens.items():
            shown = token if token in generated else "(configured in CONTROLPLANE_DEV_TOKENS; not shown)"
            self.stdout.write(f"  {entry['role']:<9} {entry['id']:<14} {shown}")
        example = next((token for token in tokens if token in generated), "$TOKEN")
        self.stdout.write("Try:")
        self.stdout.write(f'  curl -H "Authorization: Bearer {example}" {base_url}/api/me/')
        self.stdout.write(f"  sign in at {base_url}/login/ with one of these tokens (an admin one opens /admin/)")
        deployer = generated_for(str(needed("release.deploy"))) or "$TOKEN"  # cpctl deploys with it
        cpctl = f"CONTROLPLANE_URL={base_url} CONTROLPLANE_TOKEN={deployer}; .venv/bin/cpctl services"
        self.stdout.write(f"  export {cpctl}")


def generated_tokens(path) -> set[str]:
    """The tokens in the demo set file this command writes (empty when there is none)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return set(data) if isinstance(data, dict) else set()
