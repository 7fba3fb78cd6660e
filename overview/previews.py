"""What a deploy or a promotion will do, said before it happens (docs/pages.md, confirmations).

One domain function per action, free of HTTP, so the dashboard's confirmation pages and the CLI say the same
thing: "rel-9 (2024.10.02, 4f2a9c1) replaces rel-7 in env-prod; svc-demo has 2 open incidents (highest:
high); policy refs: policy:change-window:weekday. Refused by policy (…). It is next allowed at …". It crosses
releases (what the release is), the deployment-state read model (what runs there now, the service's open
incidents), the environment's policy refs and the policy gate's decision now (`policies.gate`: what the POST
would meet, break-glass aside), so it lives here, above them all. A constant number of queries: the read
model's two rows and the gate's facts.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from controlplane.identity.context import current_principal
from incidents.models import SEVERITIES
from overview.models import DeploymentState, ServiceState
from policies import gate, status
from releases import workflows
from releases.models import Release
from services.models import Environment


@dataclass(frozen=True)
class Preview:
    """What will happen: `text` in one line, and its parts for a caller that shows them its own way."""

    action: str  # "deploy" or "promote"
    release: Release  # the release deployed, or promoted from
    environment: Environment  # where it goes
    replaces: str | None  # the release current there now, if any
    open_incidents: dict[str, int] = field(default_factory=dict)  # by severity, lowest first; zeros left out
    highest_severity: str = ""
    policy_refs: tuple[str, ...] = ()
    refusal: str | None = None  # why the domain would refuse it as things stand: then nothing will happen
    decision: gate.Decision | None = None  # the policies' decision now (None with a refusal: nothing is asked)
    zones: tuple[str, ...] = ()  # the time zones of the environment's change windows

    @property
    def next_allowed(self) -> str | None:
        """When a refused action is next allowed, in UTC and in the windows' zones: "2026-12-07 08:00 UTC (Mon
        09:00 Europe/Berlin)"."""
        if self.decision is None or self.decision.next_allowed_at is None:
            return None
        when, at = self.decision.next_allowed_at, self.decision.at
        local = ", ".join(status.local_time(when, zone, at) for zone in self.zones if zone != "UTC")
        return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" + (f" ({local})" if local else "")

    @property
    def may_break_glass(self) -> bool:
        """Refused by policies alone, all of which break-glass overrides, and the principal may use it."""
        if self.decision is None or not self.decision.overridable:
            return False
        return gate.break_glass_refusal(current_principal()) is None

    @property
    def open_incident_count(self) -> int:
        return sum(self.open_incidents.values())

    @property
    def text(self) -> str:
        """`summary`, then the policies' refusal when they refuse it."""
        if self.decision is not None and not self.decision.allowed:
            return f"{self.summary}. {self.decision.sentence}"
        return self.summary

    @property
    def summary(self) -> str:
        """What it does, in one line (a page shows the decision on its own)."""
        if self.refusal:
            return f"Nothing will happen: {self.refusal}"
        release = self.release
        what = f"{release.pk} ({release.version}, {release.sha[:7]})"
        if self.action == "promote":
            what += f", promoted from {release.environment_id} as a new release,"
        where = self.environment.pk
        if self.replaces:
            parts = [f"{what} replaces {self.replaces} in {where}"]
        else:
            parts = [f"{what} becomes the first release of {release.service_id} in {where}"]
        count = self.open_incident_count
        if count:
            noun = "incident" if count == 1 else "incidents"
            parts.append(f"{release.service_id} has {count} open {noun} (highest: {self.highest_severity})")
        else:
            parts.append(f"{release.service_id} has no open incidents")
        parts.append(f"policy refs: {', '.join(self.policy_refs) if self.policy_refs else 'none'}")
        return "; ".join(parts)


def _preview(
    action: str, release: Release, environment: Environment, refusal: str | None, at: datetime | None
) -> Preview:
    current = (
        DeploymentState.objects.filter(service_id=release.service_id, environment_id=environment.pk)
        .values_list("current_id", flat=True)
        .first()
    )
    state = ServiceState.objects.filter(service_id=release.service_id).first()
    counts = {s: getattr(state, f"open_{s}", 0) for s in SEVERITIES} if state else {}
    decision, zones = None, ()
    if refusal is None:  # what the gate would decide, asked as the workflow asks it (the source: the promoted one)
        facts = {"source": release} if action == "promote" else {"release": release}
        situation = gate.situation(action, environment, release.service_id, at=at, **facts)
        decision = gate.decide(situation, at=at)
        zones = tuple(dict.fromkeys(window.timezone for _, window in situation.windows))
    return Preview(
        action=action,
        release=release,
        environment=environment,
        replaces=current if current != release.pk else None,
        open_incidents={s: n for s, n in counts.items() if n},
        highest_severity=state.highest_open_severity if state else "",
        policy_refs=tuple(environment.policy_refs or ()),
        refusal=refusal,
        decision=decision,
        zones=zones,
    )


def deploy_preview(release: Release, at: datetime | None = None) -> Preview:
    """What `releases.workflows.deploy(release)` will do: roll it out in its own environment (decided at `at`,
    now by default)."""
    return _preview("deploy", release, release.environment, workflows.deploy_refusal(release), at)


def promote_preview(release: Release, environment: Environment | str, at: datetime | None = None) -> Preview:
    """What `releases.workflows.promote(release, environment)` will do: a new release of the same service, sha
    and version in `environment`, rolled out there. Unless it would be refused anyway, raises the
    ValidationError the POST would (an unknown environment; one not linked to the service, or archived)."""
    environment, refusal = workflows.promotion(release, environment)
    return _preview("promote", release, environment, refusal, at)
