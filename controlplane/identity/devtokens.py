"""Dev tokens: static bearer tokens mapped to roles, for offline and development use only.

Configured as `{"<token>": {"id": "<token id>", "role": "<role>"}}` in CONTROLPLANE["devTokens"]
(from CONTROLPLANE_DEV_TOKENS, or var/dev-tokens.json in dev mode). The actor is the token id.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import BaseBackend

from controlplane.identity.context import Principal
from controlplane.identity.roles import Role

log = logging.getLogger(__name__)

DEMO_ROLES = (Role.VIEWER, Role.DEPLOYER, Role.ADMIN)


@dataclass(frozen=True)
class DevToken:
    token_id: str
    role: Role
    digest: str  # SHA-256 of the token: what sessions keep, so the token itself is stored nowhere

    def principal(self, via_session: bool = False) -> Principal:
        return Principal(actor=self.token_id, role=self.role, auth_method="devToken", via_session=via_session)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def dev_mode() -> bool:
    return bool(settings.CONTROLPLANE["devMode"])


def config_problems(config) -> list[str]:
    """What is wrong with a devTokens setting, naming entries by position and id, never by token."""
    if not isinstance(config, dict):
        return ["devTokens must be a JSON object mapping each token to {id, role}."]
    problems, ids = [], set()
    for n, (token, entry) in enumerate(config.items(), start=1):
        where = f"entry {n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"].strip():
            problems.append(f"{where} needs an 'id' (the actor its requests are attributed to).")
            continue
        where = f"entry {n} ({entry['id']})"
        if entry["id"] in ids:
            problems.append(f"{where}: the id is used twice.")
        ids.add(entry["id"])
        if Role.parse(entry.get("role")) is None:
            problems.append(f"{where}: role must be one of viewer, deployer, admin.")
        if len(token) < 16:
            problems.append(f"{where}: the token is shorter than 16 characters.")
    return problems


def configured() -> list[DevToken]:
    config = settings.CONTROLPLANE["devTokens"]
    if config_problems(config):
        return []  # the system check reports the problems; a broken config grants nothing
    return [DevToken(entry["id"], Role.parse(entry["role"]), digest(token)) for token, entry in config.items()]


def find(presented: str) -> DevToken | None:
    """The configured token equal to `presented`, compared in constant time against every one."""
    presented_digest = digest(presented).encode()
    match = None
    for token in configured():
        if hmac.compare_digest(presented_digest, token.digest.encode()):
            match = token
    return match


def find_by_digest(token_digest: str) -> DevToken | None:
    match = None
    for token in configured():
        if hmac.compare_digest(token_digest.encode(), token.digest.encode()):
            match = token
    return match


def principal_for(presented: str) -> Principal | None:
    """The principal for a dev token; None when it is not one, and when dev mode is off. Then a configured
    token is refused exactly like an unknown one (same status, body and header), so the answer never
    confirms that a leaked token is real; the server log says which token id was tried, never the token."""
    token = find(presented)
    if token is None:
        return None
    if not dev_mode():
        log.warning("dev token %r was presented while dev mode is off; refused as not valid", token.token_id)
        return None
    return token.principal()


def demo_set() -> dict:
    """A fresh viewer, deployer and admin token."""
    return {f"cpdev_{secrets.token_urlsafe(24)}": {"id": f"dev-{role}", "role": str(role)} for role in DEMO_ROLES}


class DevTokenBackend(BaseBackend):
    """Sign-in with a dev token on the /login/ page (the session keeps its digest, not the token)."""

    def authenticate(self, request, dev_token=None):
        if not dev_token or not dev_mode():
            return None
        token = find(dev_token)
        if token is None:
            return None
        from controlplane.identity.users import user_for

        return user_for(token.principal(via_session=True))

    def get_user(self, user_id):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(pk=user_id, is_active=True).first()
