"""The request context: who is acting and which request this is, in ContextVars.

The middleware sets them for each request; models and the audit writer read them from here, never
from arguments. Outside a request (management commands, the worker) the actor is `system:<name>`.
"""

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from controlplane.identity.roles import Role


@dataclass(frozen=True)
class Principal:
    actor: str  # the OIDC subject (or email), the dev token id, "<owner> via <token id>", or system:<name>
    role: Role | None  # None: anonymous, allowed nothing
    auth_method: str  # "devToken", "oidc", "apiToken", "system" or "anonymous"
    via_session: bool = False  # a signed-in browser: unsafe requests need CSRF
    token_id: str | None = None  # an API token: its id, and the actor who created it
    owner: str | None = None
    environments: frozenset[str] | None = None  # where it may deploy, promote, roll back and approve; None: anywhere

    def described(self) -> dict:
        """Who this is, as /api/me/ and GraphQL's `me` say it: an API token adds its id and its owner."""
        found = {"actor": self.actor, "role": str(self.role), "authMethod": self.auth_method}
        if self.token_id is not None:
            found.update(tokenId=self.token_id, owner=self.owner)
        return found

    def scope_refusal(self, environment_id: str) -> str | None:
        """Why this principal may not move releases in `environment_id` (a scoped API token), or None."""
        if self.environments is None or environment_id in self.environments:
            return None
        allowed = ", ".join(sorted(self.environments)) or "none"
        return f"API token {self.token_id} is scoped to environments {allowed}; {environment_id} is outside its scope."


TOKEN_ACTOR = " via tok-"  # an API token's actor: "<owner> via <token id>"


def person(actor: str) -> str:
    """Who is behind an actor: an API token's owner, else the actor itself (an approval counts once per person,
    and nobody approves their own run, whether they or their tokens started it or decide on it)."""
    return actor.split(TOKEN_ACTOR, 1)[0]


def system(name: str) -> Principal:
    return Principal(actor=f"system:{name}", role=Role.ADMIN, auth_method="system")


# A request without credentials: it may read /healthz and the sign-in page, and do nothing else.
ANONYMOUS = Principal(actor="anonymous", role=None, auth_method="anonymous")

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_process_principal = system("code")


def set_process_actor(name: str) -> None:
    """Name what this process does when no request is being served (manage.py sets the command)."""
    global _process_principal
    _process_principal = system(name)


def current_principal() -> Principal:
    return _principal.get() or _process_principal


def current_actor() -> str:
    return current_principal().actor


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def acting_as(principal: Principal | str, request_id: str | None = None):
    """Run a block as `principal` (or as `system:<name>` when given a name)."""
    if isinstance(principal, str):
        principal = system(principal)
    tokens = (_principal.set(principal), _request_id.set(request_id))
    try:
        yield principal
    finally:
        _principal.reset(tokens[0])
        _request_id.reset(tokens[1])


class RequestContextFilter(logging.Filter):
    """Adds request_id and actor to every log record."""

    def filter(self, record):
        record.request_id = current_request_id() or "-"
        record.actor = current_actor()
        return True
