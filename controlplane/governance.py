"""The policy gate's socket: `releases.workflows` asks here before a deploy, promotion or rollback starts, and
the `policies` app (above the domain apps, since it reads releases and incidents) plugs its gate in when it
loads. Nothing is allowed unasked: with no gate plugged in, `check` refuses (a wiring bug, not a policy).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.errors import Conflict
from controlplane.identity.context import current_principal

_gate: Callable[..., Any] | None = None


def plug(gate: Callable[..., Any]) -> None:
    global _gate
    _gate = gate


def check(action: str, **facts) -> dict:
    """The gate's decision for `action` ("deploy", "promote", "rollback") as the event metadata it records
    (`{"allowed", "evaluated", "overridden"}`), or PolicyDenied. Called before the action's transaction.
    First, before any policy: an API token scoped to other environments is Forbidden (403) here."""
    environment = facts.get("environment")
    if environment is not None and (refusal := current_principal().scope_refusal(environment.pk)):
        raise Forbidden(refusal)
    if _gate is None:
        raise RuntimeError("no policy gate is plugged in (is the policies app installed?)")
    return _gate(action, **facts)


class PolicyDenied(Conflict):
    """A policy refused the action: a 409 whose body carries the decision (who denied it, why, and when it
    would next be allowed). Every refusal is audited once as `policy.deny`: by the gate at once, or, when the
    caller's transaction would roll the event back with everything else, by `settle()` after it has."""

    def __init__(self, message: str, decision: dict, audit: Callable[[], None] | None = None):
        super().__init__(message)
        self.decision = decision
        self._audit = audit

    def settle(self) -> None:
        """Write the refusal's audit event if it is still owed (the caller's transaction has ended)."""
        audit, self._audit = self._audit, None
        if audit is not None:
            audit()


class Forbidden(Exception):
    """The principal may not do this (HTTP 403): a rule about who, not about the request's content."""


@dataclass(frozen=True)
class BreakGlass:
    reason: str
