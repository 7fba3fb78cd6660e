"""The store identity asks about a presented API token (controlplane.identity.apitokens.Store): one indexed
query by digest per request; `last_used_at` written at most once a minute per token, not on every request."""

from datetime import timedelta

from django.utils import timezone

from controlplane.identity.context import Principal
from controlplane.identity.errors import IdentityRefused
from controlplane.identity.roles import Role
from controlplane.timestamps import rfc3339
from tokens.models import ApiToken

USE_RECORDED_EVERY = timedelta(minutes=1)
_COLUMNS = ("id", "role", "environment_ids", "owner", "expires_at", "revoked_at", "last_used_at")


def principal_for(digest: str) -> Principal:
    row = ApiToken.objects.filter(digest=digest).values(*_COLUMNS).first()
    if row is None:
        raise IdentityRefused("the bearer token is not valid.")
    now = timezone.now()
    if row["revoked_at"] is not None:
        raise IdentityRefused(f"the API token {row['id']} was revoked at {rfc3339(row['revoked_at'])}.")
    if row["expires_at"] <= now:
        raise IdentityRefused(f"the API token {row['id']} expired at {rfc3339(row['expires_at'])}.")
    if row["last_used_at"] is None or now - row["last_used_at"] >= USE_RECORDED_EVERY:
        ApiToken.objects.filter(pk=row["id"]).update(last_used_at=now)
    scope = row["environment_ids"]
    return Principal(
        actor=f"{row['owner']} via {row['id']}",  # context.TOKEN_ACTOR
        role=Role.parse(row["role"]),
        auth_method="apiToken",
        token_id=row["id"],
        owner=row["owner"],
        environments=frozenset(scope) if scope is not None else None,
    )


def still_valid(principal: Principal) -> bool:
    return ApiToken.objects.filter(
        pk=principal.token_id, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()
