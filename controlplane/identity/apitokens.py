"""API tokens (`cpat_…`) as identity sees them: a shape the middleware recognises, and the store the tokens
app plugs in (`plug`), which finds a token by its digest in one indexed query. The layers keep identity
below the apps: it asks the plugged store, it never imports it."""

import hashlib
from typing import Protocol

from controlplane.identity.context import Principal
from controlplane.identity.errors import IdentityRefused

PREFIX = "cpat_"


class Store(Protocol):
    def principal_for(self, digest: str) -> Principal:
        """The token's principal; IdentityRefused (401) when it is unknown, expired or revoked, saying which."""

    def still_valid(self, principal: Principal) -> bool:
        """Whether the token behind `principal` is still neither revoked nor expired (open streams ask)."""


_store: Store | None = None


def plug(store: Store) -> None:
    global _store
    _store = store


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_one(token: str) -> bool:
    return token.startswith(PREFIX)


def principal_for(token: str) -> Principal:
    if _store is None:
        raise IdentityRefused("the bearer token is not valid.")
    return _store.principal_for(digest(token))


def still_valid(principal: Principal) -> bool:
    """False once an API token's principal is revoked or expired; other principals are not re-checked."""
    return principal.token_id is None or _store is None or _store.still_valid(principal)
