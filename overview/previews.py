"""What a deploy or a promotion will do, said before it happens (docs/pages.md, confirmations).

One domain function per action, free of HTTP, so the dashboard's confirmation pages and the CLI say the same
thing: "rel-9 (2024.10.02, 4f2a9c1) replaces rel-7 in env-prod; svc-demo has 2 open incidents (highest:
high); policy refs: policy:change-window:weekday". It crosses releases (what the release is), the
deployment-state read model (what runs there now, the service's open incidents) and the environment's
policy refs, so it lives here, above them all. A constant number of queries: the read model's two rows.
"""

from dataclasses import dataclass, field

from incidents.models import SEVERITIES
from overview.models import DeploymentState, ServiceState
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

    @property
    def open_incident_count(self) -> int:
        return sum(self.open_incidents.values())

    @property
    def text(self) -> str:
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


def _preview(action: str, release: Release, environment: Environment, refusal: str | None) -> Preview:
    current = (
        DeploymentState.objects.filter(service_id=release.service_id, environment_id=environment.pk)
        .values_list("current_id", flat=True)
        .first()
    )
    state = ServiceState.objects.filter(service_id=release.service_id).first()
    counts = {s: getattr(state, f"open_{s}", 0) for s in SEVERITIES} if state else {}
    return Preview(
        action=action,
        release=release,
        environment=environment,
        replaces=current if current != release.pk else None,
        open_incidents={s: n for s, n in counts.items() if n},
        highest_severity=state.highest_open_severity if state else "",
        policy_refs=tuple(environment.policy_refs or ()),
        refusal=refusal,
    )


def deploy_preview(release: Release) -> Preview:
    """What `releases.workflows.deploy(release)` will do: roll it out in its own environment."""
    return _preview("deploy", release, release.environment, workflows.deploy_refusal(release))


def promote_preview(release: Release, environment: Environment | str) -> Preview:
    """What `releases.workflows.promote(release, environment)` will do: a new release of the same service, sha
    and version in `environment`, rolled out there. Unless it would be refused anyway, raises the
    ValidationError the POST would (an unknown environment; one not linked to the service, or archived)."""
    environment, refusal = workflows.promotion(release, environment)
    return _preview("promote", release, environment, refusal)
