"""The policy gate (docs/policies.md): whether a deploy, promotion or rollback may start now, why not, and
when it next may.

A decision gathers the facts once (`situation`: the environment's refs, their windows, the freezes on it, the
service's open incidents, where the release comes from), then asks Cedar one batch: the action's own request
and one request per gate. Cedar decides; this module words the answer and looks for the next time it changes
(`nextAllowedAt`), asking Cedar again at the instants where a window or a freeze can change it.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from audit.writer import record
from controlplane.governance import Forbidden, PolicyDenied
from controlplane.identity.context import Principal, current_principal
from controlplane.timestamps import rfc3339
from incidents.models import OPEN, Incident
from policies import clock, engine
from releases.models import Release, RunKind, WorkflowRun
from services import policy_refs
from services.models import ChangeWindow, Environment, Freeze

ACTIONS = ("deploy", "promote", "rollback")
SEVERITY_RANK = {"": 0, **{s: i for i, s in enumerate(policy_refs.SEVERITY_ORDER, 1)}}
BREAK_GLASS_REASON = (10, 500)
_LOOKAHEAD_STEPS = 32  # openings tried for nextAllowedAt (a window, then a freeze after it, ...)


@dataclass(frozen=True)
class Denial:
    policy: str  # the ref ("policy:change-window:weekday"), the freeze ("freeze:frz-…"), or a Cedar policy
    reason: str
    opens_at: datetime | None = None  # when time alone lifts it; None: something else must change
    overridable: bool = True  # break-glass lifts it (the built-in gates; never an operator's policy or an error)

    def as_json(self) -> dict:
        return {"policy": self.policy, "reason": self.reason}


@dataclass(frozen=True)
class WindowState:
    ref: str
    window: ChangeWindow
    open: bool
    next_change_at: datetime | None

    def as_json(self) -> dict:
        return {
            "name": self.window.name,
            "ref": self.ref,
            "timezone": self.window.timezone,
            "summary": self.window.summary,
            "open": self.open,
            "nextChangeAt": rfc3339(self.next_change_at),
        }


@dataclass
class Decision:
    action: str
    at: datetime
    allowed: bool
    denied_by: list[Denial]
    evaluated: list[str]
    next_allowed_at: datetime | None = None
    windows: list[WindowState] = field(default_factory=list)
    overridden: list[Denial] = field(default_factory=list)

    def as_json(self) -> dict:
        """The `decision` of a refusal, and the policy endpoint's answer (with its windows)."""
        return {
            "allowed": self.allowed,
            "deniedBy": [d.as_json() for d in self.denied_by],
            "nextAllowedAt": rfc3339(self.next_allowed_at),
        }

    def metadata(self) -> dict:
        """What an allowed action's audit event records."""
        return {
            "allowed": self.allowed,
            "evaluated": self.evaluated,
            "overridden": [d.as_json() for d in self.overridden],
        }

    @property
    def overridable(self) -> bool:
        """Refused, and break-glass would lift every denial (the built-in gates; never an operator's policy)."""
        return not self.allowed and all(d.overridable for d in self.denied_by)

    @property
    def sentence(self) -> str:
        if self.allowed:
            return f"{self.action} is allowed."
        reasons = "; ".join(f"{d.policy}: {d.reason}" for d in self.denied_by)
        when = (
            f" It is next allowed at {rfc3339(self.next_allowed_at)}."
            if self.next_allowed_at
            else " No time alone allows it."
        )
        return f"Refused by policy ({reasons}).{when}"


@dataclass
class Situation:
    """The facts one action is decided on, gathered once."""

    action: str
    principal: Principal
    environment: Environment
    service_id: str
    release_id: str
    refs: list[policy_refs.Ref]
    windows: list[tuple[str, ChangeWindow]]
    freezes: list[Freeze]
    highest_severity: str
    highest_incident: str
    source_environment: str
    source_active_since: datetime | None
    break_glass: bool = False  # asked with a break-glass reason (an operator's policy may refuse on it)


def situation(
    action: str,
    environment: Environment,
    service_id: str,
    release: Release | None = None,
    source: Release | None = None,
    principal: Principal | None = None,
    at: datetime | None = None,
) -> Situation:
    """The facts, in a constant number of queries (each only when a ref or freeze asks for it)."""
    refs = policy_refs.parse_all(environment.policy_refs)
    kinds = {ref.kind for ref in refs}
    names = [ref.window for ref in refs if ref.kind == "change-window"]
    by_name = {w.name: w for w in ChangeWindow.objects.filter(name__in=names)} if names else {}
    windows = [(ref.text, by_name[ref.window]) for ref in refs if ref.kind == "change-window" and ref.window in by_name]
    # Freezes that have not ended by `at` (the few there are: the ones on this environment are kept).
    at = at or timezone.now()
    freezes = [f for f in Freeze.objects.filter(ends_at__gt=at - timedelta(days=366)) if environment.pk in f.env_ids]
    highest, incident = "", ""
    if "incident-gate" in kinds and service_id:
        open_incidents = Incident.objects.filter(OPEN, service_id=service_id).values_list("severity", "id")
        for severity, incident_id in open_incidents:
            if SEVERITY_RANK[severity] > SEVERITY_RANK[highest]:
                highest, incident = severity, incident_id
    if source is None and release is not None and "requires" in kinds:
        origin = WorkflowRun.objects.filter(release=release, kind=RunKind.PROMOTE).values("source_release").first()
        source = Release.objects.filter(pk=origin["source_release"]).first() if origin else None
    source_active = source.activated_at if source is not None and source.status == Release.Status.ACTIVE else None
    return Situation(
        action=action,
        principal=principal or current_principal(),
        environment=environment,
        service_id=service_id,
        release_id=(source or release).pk if (source or release) else "",
        refs=refs,
        windows=windows,
        freezes=freezes,
        highest_severity=highest,
        highest_incident=incident,
        source_environment=source.environment_id if source is not None else "",
        source_active_since=source_active,
    )


def _seconds(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else -1


def _entities(s: Situation) -> list[dict]:
    role = s.principal.role
    return [
        {
            "uid": {"type": "ControlPlane::Actor", "id": s.principal.actor},
            "attrs": {"role": str(role) if role else "", "rank": int(role) if role else 0},
            "parents": [],
        },
        {
            "uid": {"type": "ControlPlane::Environment", "id": s.environment.pk},
            "attrs": {
                "name": s.environment.name,
                "production": s.environment.is_production,
                "refs": list(s.environment.policy_refs or ()),
            },
            "parents": [],
        },
    ]


def _request(s: Situation, at: datetime, **gate) -> dict:
    return {
        "principal": {"type": "ControlPlane::Actor", "id": s.principal.actor},
        "action": {"type": "ControlPlane::Action", "id": s.action},
        "resource": {"type": "ControlPlane::Environment", "id": s.environment.pk},
        "context": {
            "now": _seconds(at),
            "service": s.service_id,
            "release": s.release_id,
            "highestOpenSeverity": SEVERITY_RANK[s.highest_severity],
            "sourceEnvironment": s.source_environment,
            "sourceActiveSince": _seconds(s.source_active_since),
            "breakGlass": s.break_glass,
            **gate,
        },
    }


def _window_request(s: Situation, ref: str, window: ChangeWindow, at: datetime) -> dict:
    return _request(s, at, window={"ref": ref, **clock.facts(window, at)})


def window_states(s: Situation, at: datetime) -> list[WindowState]:
    """Each window of the environment: open at `at`, and when that next changes (asked of Cedar at `at` and at
    every instant it could change, in one batch per window)."""
    states = []
    book = engine.book()
    entities = _entities(s)
    for ref, window in s.windows:
        instants = [at, *clock.boundaries(window, at)]
        outcomes = book.ask([(_window_request(s, ref, window, t), True) for t in instants], entities)
        now_open = outcomes[0].allowed
        change = next((t for t, o in zip(instants[1:], outcomes[1:], strict=True) if o.allowed != now_open), None)
        states.append(WindowState(ref=ref, window=window, open=now_open, next_change_at=change))
    return states


def _gates(s: Situation, at: datetime) -> list[tuple[str, dict]]:
    """Each gate's (name, request) at `at`: the freezes on the environment, then its refs in their order."""
    gates = []
    for freeze in s.freezes:
        facts = {"id": freeze.pk, "startsAt": _seconds(freeze.starts_at), "endsAt": _seconds(freeze.ends_at)}
        gates.append((f"freeze:{freeze.pk}", _request(s, at, freeze=facts)))
    windows = dict(s.windows)
    for ref in s.refs:
        if ref.kind == "change-window" and ref.window in {w.name for w in windows.values()}:
            window = next(w for r, w in s.windows if r == ref.text)
            gates.append((ref.text, _window_request(s, ref.text, window, at)))
        elif ref.kind == "incident-gate":
            facts = {"ref": ref.text, "threshold": SEVERITY_RANK[ref.severity]}
            gates.append((ref.text, _request(s, at, incidentGate=facts)))
        elif ref.kind == "requires":
            facts = {"ref": ref.text, "environment": ref.environment, "soakSeconds": ref.soak_seconds}
            gates.append((ref.text, _request(s, at, requires=facts)))
    return gates


def _reason(s: Situation, name: str, at: datetime) -> tuple[str, datetime | None]:
    """A denied gate's reason and when time alone lifts it."""
    if name.startswith("freeze:"):
        freeze = next(f for f in s.freezes if f"freeze:{f.pk}" == name)
        return f"frozen by {freeze.pk} ({freeze.title}) until {rfc3339(freeze.ends_at)}", freeze.ends_at
    ref = policy_refs.parse(name)
    if ref.kind == "change-window":
        window = next(w for r, w in s.windows if r == name)
        return f"outside {window.name} ({window.summary})", None  # the window group's opening: see _evaluate
    if ref.kind == "incident-gate":
        return (
            f"{s.service_id} has an open {s.highest_severity} incident ({s.highest_incident}); "
            f"the gate refuses {ref.severity} and above",
            None,
        )
    # requires
    if s.source_environment != ref.environment:
        where = f"comes from {s.source_environment}" if s.source_environment else f"was created in {s.environment.pk}"
        return (
            f"{s.environment.pk} is reached only by promotion from a release Active in {ref.environment} "
            f"(this release {where})",
            None,
        )
    if s.source_active_since is None:
        return f"the source release is not Active in {ref.environment}", None
    ready = s.source_active_since + timedelta(seconds=ref.soak_seconds)
    soak = policy_refs.format_soak(ref.soak_seconds)
    return f"the source release must be Active in {ref.environment} for {soak} (until {rfc3339(ready)})", ready


def evaluate(s: Situation, at: datetime) -> tuple[list[Denial], list[str]]:
    """What denies the action at `at` (each gate and policy that does), and what was evaluated."""
    gates = _gates(s, at)
    book = engine.book()
    outcomes = book.ask([(_request(s, at), False), *((request, True) for _, request in gates)], _entities(s))
    denials: list[Denial] = []
    for policy, message in outcomes[0].errors:
        denials.append(Denial(policy.name, f"evaluation error in {policy.file}: {message}", overridable=False))
    for policy in outcomes[0].forbidden_by:
        reason = policy.reason or f"forbidden by {policy.name} ({policy.file})"
        denials.append(Denial(policy.name, reason, overridable=False))
    window_denials = []
    for (name, _), outcome in zip(gates, outcomes[1:], strict=True):
        for policy, message in outcome.errors:
            denials.append(Denial(name, f"evaluation error in {policy.name}: {message}", overridable=False))
        if outcome.forbidden_by:
            reason, opens_at = _reason(s, name, at)
            (window_denials if name.startswith("policy:change-window:") else denials).append(
                Denial(name, reason, opens_at)
            )
    # Several windows: open while any is open. Refused only when all are closed, until the first opens.
    if window_denials and len(window_denials) == len(s.windows):
        opening = min((w.next_change_at for w in window_states(s, at) if w.next_change_at), default=None)
        denials[:0] = [Denial(d.policy, d.reason, opening) for d in window_denials]
    evaluated = [name for name, _ in gates] + [
        p.name for p in book.policies.values() if not p.builtin
    ]
    return denials, evaluated


def decide(s: Situation, at: datetime | None = None, explain: bool = False) -> Decision:
    """The decision at `at` (now by default), with `nextAllowedAt` when refused (and each window's state when
    `explain`)."""
    at = at or timezone.now()
    denials, evaluated = evaluate(s, at)
    decision = Decision(s.action, at, not denials, denials, evaluated)
    if denials:
        decision.next_allowed_at = _next_allowed(s, at, denials)
    if explain:
        decision.windows = window_states(s, at)
    return decision


def _next_allowed(s: Situation, at: datetime, denials: list[Denial]) -> datetime | None:
    """The first instant after `at` at which nothing denies, if time alone gets there."""
    t = at
    for _ in range(_LOOKAHEAD_STEPS):
        if any(d.opens_at is None for d in denials):
            return None
        t = max(d.opens_at for d in denials)
        denials, _ = evaluate(s, t)
        if not denials:
            return t
    return None


def break_glass_refusal(principal: Principal | None) -> str | None:
    """Why the principal may not use break-glass (its role is not in CONTROLPLANE_BREAK_GLASS_ROLES), or None:
    what a 403 says, and what a page asks before offering it."""
    roles = settings.CONTROLPLANE_BREAK_GLASS_ROLES
    role = principal.role if principal is not None else None
    if role is not None and str(role) in roles:
        return None
    return (
        f"break-glass is allowed to the roles in CONTROLPLANE_BREAK_GLASS_ROLES ({', '.join(roles)}); "
        f"you are {role or 'anonymous'}."
    )


def check_break_glass(principal: Principal, break_glass: dict | None) -> str | None:
    """The break-glass reason, once the principal may use it and the reason is well formed (else 403 / 400)."""
    if break_glass is None:
        return None
    if refusal := break_glass_refusal(principal):
        raise Forbidden(refusal)
    reason = break_glass.get("reason") if isinstance(break_glass, dict) else None
    low, high = BREAK_GLASS_REASON
    if not isinstance(reason, str) or not low <= len(reason.strip()) <= high:
        raise ValidationError({"breakGlass": [f"reason: is required, {low}-{high} characters."]})
    return reason.strip()


@dataclass
class Verdict:
    """An allowed action's decision: its event metadata, and the break-glass record written with the action."""

    decision: Decision
    break_glass: str | None
    subject: Release | None
    environment_id: str

    @property
    def metadata(self) -> dict:
        return self.decision.metadata()

    def record(self) -> None:
        """In the action's transaction: break-glass is audited as `policy.override`, with what it overrode."""
        if self.break_glass is None:
            return
        overridden = [d.as_json() for d in self.decision.overridden]
        record(
            "policy.override",
            "Release" if self.subject else "Environment",
            self.subject.pk if self.subject else self.environment_id,
            {"action": self.decision.action, "reason": self.break_glass, "overridden": overridden},
            service_id=self.subject.service_id if self.subject else "",
        )


def gate(
    action: str,
    *,
    environment: Environment,
    release: Release | None = None,
    source: Release | None = None,
    break_glass: dict | None = None,
) -> Verdict:
    """What `controlplane.governance.check` asks: a Verdict to record with the action, or PolicyDenied (409),
    Forbidden (403: break-glass by a role not allowed it) or ValidationError (400: its reason)."""
    principal = current_principal()
    reason = check_break_glass(principal, break_glass)
    subject = source or release
    s = situation(action, environment, subject.service_id if subject else "", release, source, principal)
    s.break_glass = reason is not None
    decision = decide(s)
    if reason is not None and decision.overridable:
        decision.overridden, decision.denied_by, decision.allowed = decision.denied_by, [], True
        decision.next_allowed_at = None
    if decision.allowed:
        return Verdict(decision, reason, subject, environment.pk)
    refusal = PolicyDenied(decision.sentence, decision.as_json(), audit=lambda: _record_denial(decision, s, subject))
    if not connection.in_atomic_block:
        refusal.settle()
    raise refusal


def _record_denial(decision: Decision, s: Situation, subject: Release | None) -> None:
    with transaction.atomic():
        record(
            "policy.deny",
            "Release" if subject else "Environment",
            subject.pk if subject else s.environment.pk,
            {
                "action": decision.action,
                "environment": s.environment.pk,
                "deniedBy": [d.as_json() for d in decision.denied_by],
                "nextAllowedAt": rfc3339(decision.next_allowed_at),
            },
            service_id=s.service_id,
        )
