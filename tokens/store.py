"""The store identity asks about a presented API token (controlplane.identity.apitokens.Store).

Found by its digest in one indexed query. A process keeps what it found (CONTROLPLANE_API_TOKEN_CACHE, on by
default on SQLite: one host), so that a request with a token costs what one with a dev token does rather than a
database connection: an entry is used until its token expires, until a minute has passed (then the database is
asked again, and `last_used_at`, recorded to the minute, is written), or until any token is revoked. A revocation
replaces a marker file (CONTROLPLANE_API_TOKEN_REVOCATIONS, under var/) once it commits, and every process
compares the marker with the one it filled its entries under on every request (one stat): a revoked token is
refused on its very next request, in every process on the host."""

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from controlplane.identity.context import Principal
from controlplane.identity.errors import IdentityRefused
from controlplane.identity.roles import Role
from controlplane.timestamps import rfc3339
from tokens.models import ApiToken

USE_RECORDED_EVERY = timedelta(minutes=1)
_COLUMNS = ("id", "role", "environment_ids", "owner", "expires_at", "revoked_at", "last_used_at")


@dataclass(frozen=True)
class _Found:
    principal: Principal
    expires_at: datetime
    recorded_at: datetime  # the `last_used_at` this process last wrote or read


_found: dict[str, _Found] = {}
_marker: tuple[int, int] | None = None  # the revocations marker the entries were kept under


def principal_for(digest: str) -> Principal:
    now = timezone.now()
    if settings.CONTROLPLANE_API_TOKEN_CACHE:
        _forget_if_revoked()
        kept = _found.get(digest)
        if kept is not None and kept.expires_at > now and now - kept.recorded_at < USE_RECORDED_EVERY:
            return kept.principal
    row = ApiToken.objects.filter(digest=digest).values(*_COLUMNS).first()
    if row is None:
        raise IdentityRefused("the bearer token is not valid.")
    if row["revoked_at"] is not None:
        raise IdentityRefused(f"the API token {row['id']} was revoked at {rfc3339(row['revoked_at'])}.")
    if row["expires_at"] <= now:
        raise IdentityRefused(f"the API token {row['id']} expired at {rfc3339(row['expires_at'])}.")
    recorded = row["last_used_at"]
    if recorded is None or now - recorded >= USE_RECORDED_EVERY:
        ApiToken.objects.filter(pk=row["id"]).update(last_used_at=now)
        recorded = now
    scope = row["environment_ids"]
    principal = Principal(
        actor=f"{row['owner']} via {row['id']}",  # context.TOKEN_ACTOR
        role=Role.parse(row["role"]),
        auth_method="apiToken",
        token_id=row["id"],
        owner=row["owner"],
        environments=frozenset(scope) if scope is not None else None,
    )
    if settings.CONTROLPLANE_API_TOKEN_CACHE:
        _found[digest] = _Found(principal, row["expires_at"], recorded)
    return principal


def still_valid(principal: Principal) -> bool:
    return ApiToken.objects.filter(
        pk=principal.token_id, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def forget(token: ApiToken) -> None:
    _found.pop(token.digest, None)


def revoked(token: ApiToken) -> None:
    """A token's revocation has committed: every process forgets what it kept on its next request, when it finds
    the marker replaced (this one has forgotten the token already)."""
    path = settings.CONTROLPLANE_API_TOKEN_REVOCATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    fresh.write_text(f"{token.pk}\n")
    os.replace(fresh, path)  # a new file: its inode tells every process, whatever the mtime's resolution


def _forget_if_revoked() -> None:
    global _marker
    try:
        stat = os.stat(settings.CONTROLPLANE_API_TOKEN_REVOCATIONS)
        marker = (stat.st_ino, stat.st_mtime_ns)
    except FileNotFoundError:
        marker = (0, 0)
    if marker != _marker:
        _found.clear()
        _marker = marker
