"""Incidents in (docs/integrations.md, "Incidents in"): what PagerDuty (Webhooks v3), Prometheus Alertmanager
(webhook payload version 4) or a generic Standard Webhooks sender posts to `/api/integrations/{id}/events/`.

Nothing is silent. A request whose signature or token fails is a 401 and stores nothing (anyone could send it).
Every other request is answered with what became of it and logged in the integration's delivery log
(ReceivedEvent): created, updated, unchanged, ignored (a ping, an event type not followed, an unmapped service:
202, so the source does not retry what will never change), duplicate, or rejected (malformed, or naming what does
not exist: a 4xx with the reason). Changes are made as `integration:<id>` and audited like any other."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from controlplane.timestamps import parse_rfc3339
from incidents import lifecycle as incidents
from incidents.models import OPEN, Incident, IncidentStatus, Severity, source_link
from integrations import signatures
from integrations.models import Integration, Outcome, ReceivedEvent

logger = logging.getLogger("controlplane.integrations")

Status = IncidentStatus
# PagerDuty's priority names its severity; without a priority, the urgency does.
PRIORITY_SEVERITY = {"P1": Severity.CRITICAL, "P2": Severity.HIGH, "P3": Severity.MEDIUM}
URGENCY_SEVERITY = {"high": Severity.HIGH, "low": Severity.LOW}
PAGERDUTY_MOVES = {
    "incident.triggered": Status.TRIGGERED,
    "incident.acknowledged": Status.ACKNOWLEDGED,
    "incident.resolved": Status.RESOLVED,
}
# Alertmanager's `severity` label, as rules commonly write it; any other value is medium.
LABEL_SEVERITY = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "minor": Severity.LOW,
    "low": Severity.LOW,
    "info": Severity.LOW,
    "none": Severity.LOW,
}
GENERIC_FIELDS = {"externalId", "serviceId", "severity", "title", "status", "link", "startedAt"}
TITLE_LENGTH = Incident._meta.get_field("title").max_length


class Refused(Exception):
    """The request is from the source but cannot be used: a 4xx, logged, with the reason."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


@dataclass
class Received:
    """What became of a request: its answer and its line in the delivery log."""

    status: int = 202
    event_id: str = ""
    event_type: str = ""
    external_id: str = ""
    occurred_at: datetime | None = None
    results: list[dict] = field(default_factory=list)
    reason: str = ""
    outcome: str = ""

    def result(self, external_id: str, outcome: str, incident: Incident | None = None, reason: str = "") -> None:
        self.results.append(
            {"externalId": external_id, "outcome": outcome, "incidentId": incident.pk if incident else None}
            | ({"reason": reason} if reason else {})
        )

    def summary(self) -> str:
        """The request's outcome: the strongest of its results' (an Alertmanager request carries several)."""
        if self.outcome:
            return self.outcome
        order = [Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.IGNORED]
        found = {r["outcome"] for r in self.results}
        return next((o for o in order if o in found), Outcome.UNCHANGED)


def actor(integration: Integration) -> Principal:
    return Principal(actor=f"integration:{integration.pk}", role=Role.DEPLOYER, auth_method="integration")


def receive(integration: Integration, headers, body: bytes) -> tuple[int, dict]:
    """Verify, apply and log one request; its answer (status, JSON body). SignatureRefused is the caller's 401."""
    now = timezone.now()
    verified_id = verify(integration, headers, body, now)
    received = Received(event_id=verified_id)
    try:
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refused("send the event as JSON (Content-Type: application/json).", status=415)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise Refused(f"the body is not JSON: {e}.") from None
        if not isinstance(payload, dict):
            raise Refused("the body must be a JSON object.")
        with acting_as(actor(integration)), transaction.atomic():
            APPLY[integration.kind](integration, payload, received)
    except Refused as refused:
        received.status, received.outcome, received.reason = refused.status, Outcome.REJECTED, str(refused)
        received.results = []  # what the request's other alerts did was rolled back with it: none of it happened
    return logged(integration, received)


def verify(integration: Integration, headers, body: bytes, now: datetime) -> str:
    """The request's event id where the signature carries one (webhook-id); SignatureRefused if it is not signed
    with one of the integration's secrets."""
    secrets_ = integration.secrets(now)
    if integration.kind == Integration.Kind.PAGERDUTY:
        signatures.verify_pagerduty(secrets_, headers.get("X-PagerDuty-Signature", ""), body)
        return ""
    if integration.kind == Integration.Kind.ALERTMANAGER:
        signatures.verify_bearer(secrets_, headers.get("Authorization", ""))
        return ""
    return signatures.verify_standard(secrets_, headers, body, now)


def logged(integration: Integration, received: Received) -> tuple[int, dict]:
    """Write the request's line in the delivery log; a repeated event id is logged as a duplicate."""
    entry = ReceivedEvent(
        integration=integration,
        event_id=received.event_id[:200],
        event_type=received.event_type[:100],
        external_id=received.external_id[:200],
        occurred_at=received.occurred_at,
        status_code=received.status,
        outcome=received.summary(),
        reason=received.reason[:500],
        results=received.results,
        duplicate=received.summary() == Outcome.DUPLICATE,
    )
    entry.save()
    if received.status >= 400:
        logger.warning("integration %s refused an event: %s", integration.pk, received.reason)
    answer = {"id": entry.pk, "outcome": entry.outcome, "results": received.results}
    if received.reason:
        answer["detail"] = received.reason
    return received.status, answer


def _seen(integration: Integration, received: Received) -> bool:
    """Whether the event id was received before (its first delivery counts; PagerDuty retries until a 2xx)."""
    if not received.event_id:
        return False
    earlier = ReceivedEvent.objects.filter(integration=integration, event_id=received.event_id, duplicate=False)
    return earlier.exclude(outcome=Outcome.REJECTED).exists()  # a rejected event may be sent again, and count


def _text(value, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Refused(f"{where} must be a non-empty string.")
    return value


def _time(value, where: str) -> datetime:
    try:
        return parse_rfc3339(value)
    except ValueError as e:
        raise Refused(f"{where} {e}") from None


def _incident(integration: Integration, external_id: str) -> Incident | None:
    """The source's incident for `external_id`: the open one, else the latest."""
    found = Incident.objects.filter(integration=integration, external_id=external_id)
    return found.filter(OPEN).first() or found.order_by("-started_at").first()


def _create(integration: Integration, external_id: str, **fields) -> Incident:
    incident = Incident(source=integration.kind, integration=integration, external_id=external_id, **fields)
    incident.title = incident.title[:TITLE_LENGTH]
    incident.redact_secrets()  # a source's text is a record: a secret-shaped span in it is redacted, not refused
    try:
        with transaction.atomic():
            incident.save()
    except ValidationError as e:
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in e.message_dict.items())
        raise Refused(f"the incident cannot be created: {problems}", status=422) from None
    except IntegrityError:  # the same incident created by a concurrent request: ask the source to retry
        raise Refused("the incident is being created by another request; retry.", status=409) from None
    return incident


def _move(incident: Incident, target: str) -> bool:
    """Move `incident` to `target` if its state machine allows it from where it is; whether it moved."""
    if incident.status == target or target not in incident.allowed_moves:
        return False
    (incidents.acknowledge if target == Status.ACKNOWLEDGED else incidents.resolve)(incident)
    return True


def _apply(integration: Integration, received: Received, external_id: str, target: str, create: dict) -> None:
    """Bring the source's incident `external_id` to `target`: created (with `create`'s fields) when there is
    none, moved forward when it can be, unchanged otherwise (a late event never moves it back)."""
    incident = _incident(integration, external_id)
    if incident is None:
        incident = _create(integration, external_id, **create)
        _move(incident, target)
        received.result(external_id, Outcome.CREATED, incident)
    elif _move(incident, target):
        received.result(external_id, Outcome.UPDATED, incident)
    else:
        received.result(external_id, Outcome.UNCHANGED, incident, f"already {incident.status}")


# --- PagerDuty Webhooks v3 ---


def pagerduty_severity(data: dict) -> str:
    priority = (data.get("priority") or {}).get("summary") if isinstance(data.get("priority"), dict) else None
    if priority:
        return PRIORITY_SEVERITY.get(priority.strip().upper(), Severity.LOW)
    return URGENCY_SEVERITY.get(data.get("urgency"), Severity.LOW)


def apply_pagerduty(integration: Integration, payload: dict, received: Received) -> None:
    event = payload.get("event")
    if not isinstance(event, dict):
        raise Refused("a PagerDuty v3 webhook has an `event` object.")
    received.event_id = _text(event.get("id"), "event.id")
    received.event_type = _text(event.get("event_type"), "event.event_type")
    if _seen(integration, received):
        received.outcome, received.reason = Outcome.DUPLICATE, f"event {received.event_id} was received before."
        return
    if received.event_type == "pagey.ping":
        received.outcome, received.reason = Outcome.IGNORED, "ping: the subscription reaches the control plane."
        return
    if received.event_type not in PAGERDUTY_MOVES:
        received.outcome = Outcome.IGNORED
        received.reason = f"{received.event_type} is not followed (only {', '.join(PAGERDUTY_MOVES)})."
        return
    received.occurred_at = _time(event.get("occurred_at"), "event.occurred_at")
    data = event.get("data")
    if not isinstance(data, dict):
        raise Refused("event.data must be the incident.")
    external_id = received.external_id = _text(data.get("id"), "event.data.id")
    later = ReceivedEvent.objects.filter(
        integration=integration,
        external_id=external_id,
        occurred_at__gt=received.occurred_at,
        outcome__in=[Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED],
    ).first()
    if later is not None:
        received.result(
            external_id, Outcome.UNCHANGED, _incident(integration, external_id),
            f"older than {later.event_type} at {later.occurred_at.isoformat()}, already applied.",
        )  # fmt: skip
        return
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    service_id = integration.service_for(service.get("id"))
    if service_id is None:
        received.outcome = Outcome.IGNORED
        received.reason = (
            f"PagerDuty service {service.get('id')!r} ({service.get('summary', 'unnamed')}) maps to no service: "
            "add it to the integration's serviceMap."
        )
        return
    create = {
        "service_id": service_id,
        "title": _text(data.get("title"), "event.data.title", required=False),
        "severity": pagerduty_severity(data),
        "link": _text(data.get("html_url"), "event.data.html_url"),
        "started_at": _time(data.get("created_at"), "event.data.created_at"),
    }
    _apply(integration, received, external_id, PAGERDUTY_MOVES[received.event_type], create)


# --- Prometheus Alertmanager, webhook payload version 4 ---


def apply_alertmanager(integration: Integration, payload: dict, received: Received) -> None:
    if payload.get("version") != "4":
        raise Refused(f"Alertmanager webhook payload version 4 is understood; this is {payload.get('version')!r}.")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise Refused("alerts must be a list of alerts.")
    received.event_type = f"alertmanager.{payload.get('status', 'unknown')}"
    for n, alert in enumerate(alerts):
        where = f"alerts[{n}]"
        fingerprint = _text(alert.get("fingerprint"), f"{where}.fingerprint")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise Refused(f"{where}.status must be firing or resolved.")
        labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
        annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
        service_id = integration.service_for(labels.get("service"))
        if service_id is None:
            received.result(
                fingerprint, Outcome.IGNORED,
                reason=f"its service label {labels.get('service')!r} maps to no service (serviceMap).",
            )  # fmt: skip
            continue
        started_at = _time(alert.get("startsAt"), f"{where}.startsAt")
        incident = _incident(integration, fingerprint)
        # An alert's startsAt names its episode: firing again after it was resolved starts a new one (a new incident);
        # a late notification about an earlier episode changes nothing of a later one.
        earlier = incident is not None and started_at < incident.started_at
        if status == "firing" and incident and incident.status == Status.RESOLVED and started_at > incident.started_at:
            incident = None  # the alert fires again after it was resolved: a new incident
        if status == "resolved" and incident is None:
            received.result(fingerprint, Outcome.UNCHANGED, reason="no incident for this alert.")
            continue
        if earlier:
            received.result(
                fingerprint, Outcome.UNCHANGED, incident,
                f"about the alert that started at {alert['startsAt']}, before this incident.",
            )  # fmt: skip
            continue
        title = annotations.get("summary") or annotations.get("title") or labels.get("alertname") or fingerprint
        create = {
            "service_id": service_id,
            "title": str(title),
            "severity": LABEL_SEVERITY.get(str(labels.get("severity", "")).lower(), Severity.MEDIUM),
            "link": _link(alert.get("generatorURL"), payload.get("externalURL")),
            "started_at": started_at,
        }
        if incident is None:  # firing (a resolved alert without an incident was answered above)
            received.result(fingerprint, Outcome.CREATED, _create(integration, fingerprint, **create))
        elif _move(incident, Status.RESOLVED if status == "resolved" else Status.TRIGGERED):
            received.result(fingerprint, Outcome.UPDATED, incident)
        else:
            received.result(fingerprint, Outcome.UNCHANGED, incident, f"already {incident.status}")


def _link(*candidates) -> str:
    """The first of an alert's links that is an absolute URL: Prometheus names itself by its host name (a bare
    `http://prometheus-k8s-0:9090`, no absolute URL) unless --web.external-url is set, when Alertmanager's may be."""
    given = [c for c in candidates if isinstance(c, str) and c]
    for candidate in given:
        try:
            source_link(candidate)
        except ValidationError:
            continue
        return candidate
    return given[0] if given else ""  # the model names what is wrong with it


# --- generic: a Standard Webhooks request ---


def apply_generic(integration: Integration, payload: dict, received: Received) -> None:
    if unknown := sorted(set(payload) - GENERIC_FIELDS):
        raise Refused(f"unknown field {', '.join(unknown)}; the fields are {', '.join(sorted(GENERIC_FIELDS))}.")
    received.event_type = "generic"
    if _seen(integration, received):
        received.outcome, received.reason = Outcome.DUPLICATE, f"webhook-id {received.event_id} was received before."
        return
    external_id = received.external_id = _text(payload.get("externalId"), "externalId")
    status = payload.get("status")
    if status not in Status.values:
        raise Refused(f"status must be one of {', '.join(Status.values)}.")
    received.event_type = f"generic.{status}"
    service_id = integration.service_for(_text(payload.get("serviceId"), "serviceId"))
    if service_id is None:
        raise Refused(f"serviceId: unknown service {payload['serviceId']!r} (nor a key of the serviceMap).")
    severity = payload.get("severity", Severity.MEDIUM)
    if severity not in Severity.values:
        raise Refused(f"severity must be one of {', '.join(Severity.values)}.")
    create = {
        "service_id": service_id,
        "title": _text(payload.get("title"), "title", required=False),
        "severity": severity,
        "link": _text(payload.get("link"), "link"),
        "started_at": _time(payload["startedAt"], "startedAt") if "startedAt" in payload else timezone.now(),
    }
    _apply(integration, received, external_id, status, create)


APPLY = {
    Integration.Kind.PAGERDUTY: apply_pagerduty,
    Integration.Kind.ALERTMANAGER: apply_alertmanager,
    Integration.Kind.GENERIC: apply_generic,
}
