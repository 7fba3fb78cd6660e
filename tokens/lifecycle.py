"""Issuing and revoking API tokens: the rules every door (REST, GraphQL, the page, the admin) goes through."""

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from controlplane.governance import Forbidden
from controlplane.identity import apitokens
from controlplane.identity.context import Principal, current_principal
from controlplane.identity.roles import Role
from controlplane.signals import action_performed
from services.models import Environment
from tokens import store
from tokens.models import ApiToken

LONGEST = timedelta(days=365)  # a token expires at most a year after it is issued
PREFIX_LENGTH = 12  # "cpat_" and 7 characters: enough to tell tokens apart in a list, far too few to guess one


def issue_refusal(principal: Principal) -> str | None:
    """Why `principal` may not issue tokens, or None: a token never issues tokens (a leaked one could outlive
    its own expiry and revocation through the tokens it made)."""
    if principal.token_id is not None:
        return "an API token cannot issue API tokens; sign in as yourself (OIDC or a dev token)."
    return None


def issue(name: str, role: str, expires_at: datetime, environment_ids: list[str] | None = None) -> tuple[ApiToken, str]:
    """A new token for the current principal, and its secret, which is shown this once and stored nowhere.
    ValidationError naming each field that breaks a rule; Forbidden when the principal may not issue."""
    principal = current_principal()
    if refusal := issue_refusal(principal):
        raise Forbidden(refusal)
    errors: dict[str, list[str]] = {}
    if Role.parse(role) is not None and role not in issuable_roles(principal):
        errors["role"] = [f"must be at most your own role ({principal.role}); {role} is above it."]
    now = timezone.now()
    if isinstance(expires_at, datetime) and timezone.is_aware(expires_at):
        if expires_at <= now:
            errors["expires_at"] = ["must be in the future."]
        elif expires_at > now + LONGEST:
            errors["expires_at"] = ["must be at most one year (365 days) ahead."]
    if isinstance(environment_ids, list) and all(isinstance(i, str) for i in environment_ids):
        known = set(Environment.objects.filter(pk__in=environment_ids).values_list("pk", flat=True))
        if unknown := [i for i in environment_ids if i not in known]:
            errors["environment_ids"] = [f"unknown environment {', '.join(map(repr, unknown))}."]
    secret = apitokens.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role,
        environment_ids=environment_ids,
        owner=principal.actor,
        digest=apitokens.digest(secret),
        prefix=secret[:PREFIX_LENGTH],
        created_at=now,
        expires_at=expires_at,
    )
    try:
        token.full_clean()
    except ValidationError as e:
        errors = e.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        token.save()
        action_performed.send(sender=ApiToken, instance=token, action="token.create", metadata=_described(token))
    return token, secret


def _described(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "role": token.role,
        "envIds": token.environment_ids,
        "prefix": token.prefix,
        "owner": token.owner,
        "expiresAt": token.expires_at,
    }


def issuable_roles(principal: Principal) -> list[str]:
    """The roles `principal` may give a token: its own and those below it."""
    return [str(role) for role in Role if principal.role is not None and role <= principal.role]


def sees_all(principal: Principal) -> bool:
    """Whether `principal` sees and revokes every token (an admin, not through a token), or only its own."""
    return principal.token_id is None and principal.role is not None and principal.role >= Role.ADMIN


def visible(principal: Principal):
    """The tokens `principal` may see and revoke: admins every one, others those they issued; a token itself."""
    tokens = ApiToken.objects.all()
    if principal.token_id is not None:
        return tokens.filter(pk=principal.token_id)
    return tokens if sees_all(principal) else tokens.filter(owner=principal.actor)


def revoke(token: ApiToken) -> ApiToken:
    """Revoke `token`, at once: its next request is a 401, its open streams end at their next keep-alive.
    Revoking a revoked token changes nothing (and audits nothing)."""
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db()
        if revoked:
            action_performed.send(sender=ApiToken, instance=token, action="token.revoke", metadata={"name": token.name})
            transaction.on_commit(lambda: store.revoked(token))  # every process on the host, on its next request
    store.forget(token)  # this process, at once
    return token
