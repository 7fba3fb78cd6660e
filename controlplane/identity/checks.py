from django.conf import settings
from django.core.checks import Error, Warning, register

from controlplane.identity import devtokens, oidc
from controlplane.identity.roles import Role


@register()
def identity_settings(app_configs, **kwargs):
    problems = [
        Error(f"CONTROLPLANE_DEV_TOKENS: {problem}", id="controlplane.E001")
        for problem in devtokens.config_problems(settings.CONTROLPLANE["devTokens"])
    ]
    options = settings.CONTROLPLANE["oidc"]
    bad_roles = sorted({str(v) for v in options["roleMap"].values() if Role.parse(v) is None})
    if bad_roles:
        problems.append(
            Error(f"CONTROLPLANE_OIDC_ROLE_MAP maps to unknown roles: {', '.join(bad_roles)}.", id="controlplane.E002")
        )
    if options["defaultRole"] and Role.parse(options["defaultRole"]) is None:
        problems.append(
            Error("CONTROLPLANE_OIDC_DEFAULT_ROLE must be viewer, deployer or admin.", id="controlplane.E003")
        )
    if options["actorClaim"] not in ("sub", "email"):
        problems.append(Error("CONTROLPLANE_OIDC_ACTOR_CLAIM must be 'sub' or 'email'.", id="controlplane.E004"))
    configured_some = any(getattr(settings, name, "") for name in oidc.REQUIRED_SETTINGS)
    if configured_some and not oidc.configured():
        problems.append(
            Warning(
                f"OIDC is partly configured; missing: {', '.join(oidc.missing_settings())}.", id="controlplane.W001"
            )
        )
    return problems
