"""The outbox (integrations.outbox): what an audit event writes for each endpoint that listens, in the event's own
transaction, and what the body says: the event as the REST API shows it, and what it is about."""

import json

import pytest
from django.db import transaction

from audit.models import AuditEvent
from controlplane.identity.context import acting_as
from incidents import lifecycle as incidents
from incidents.models import Incident
from integrations import lifecycle, outbox
from integrations.models import WebhookDelivery
from services.models import Service
from tests.conftest import bearer


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True  # nothing is sent here; the endpoints name 127.0.0.1


def endpoint(events, format="standard", port=9):
    with acting_as("tests"):
        return lifecycle.create_webhook(f"http://127.0.0.1:{port}/hooks", events, format=format)[0]


def bodies(endpoint) -> list[dict]:
    return [json.loads(d.body) for d in WebhookDelivery.objects.filter(endpoint=endpoint).order_by("created_at", "id")]


def test_the_body_is_the_audit_event_as_the_api_shows_it_and_its_subject(client, make_environment):
    with acting_as("tests"):
        environment = make_environment()
    hook = endpoint(["service.create"])
    with acting_as("tests"):
        service = Service(name="Payments", repo="github.com/acme/pay", deployment_adapters=["k8s"])
        service.save()
        service.environments.set([environment])
    (body,) = bodies(hook)
    event = AuditEvent.objects.get(action="service.create", subject_id=service.id)
    shown = client.get(f"/api/audit-events/{event.seq}/", **bearer("viewer"))
    assert shown.status_code == 200, shown.content

    assert body["type"] == "service.create"
    assert body["timestamp"] == shown.json()["ts"]
    data = dict(body["data"])
    subject = data.pop("subject")
    assert data == shown.json()
    assert subject == {
        "type": "Service",
        "id": service.id,
        "name": "Payments",
        "repo": "github.com/acme/pay",
        "adapters": ["k8s"],
    }
    assert WebhookDelivery.objects.get(endpoint=hook).event_seq == event.seq


def test_a_subject_time_is_written_as_the_api_writes_it(client, make_service):
    hook = endpoint(["incident.create"])
    with acting_as("tests"):
        incident = Incident(service=make_service(), severity="high", link="https://pd.example.com/1")
        incident.save()
    (body,) = bodies(hook)
    shown = client.get(f"/api/incidents/{incident.id}/", **bearer("viewer")).json()
    assert body["data"]["subject"]["startedAt"] == shown["startedAt"]
    assert body["data"]["subject"]["startedAt"].endswith("Z")


def test_the_body_is_fixed_when_the_event_commits(make_service):
    hook = endpoint(["service.create"])
    with acting_as("tests"):
        service = make_service(name="Before")
        service.name = "After"
        service.save()  # service.update: not subscribed
    (body,) = bodies(hook)
    assert body["data"]["subject"]["name"] == "Before"


def test_each_format_gets_its_own_body_and_endpoints_of_a_format_the_same(make_service):
    standard = [endpoint(["service.create"], port=p) for p in (9, 10)]
    slack = [endpoint(["service.create"], format="slack", port=p) for p in (11, 12)]
    with acting_as("tests"):
        service = make_service()
    written = {d.endpoint_id: d.body for d in WebhookDelivery.objects.filter(event_type="service.create")}
    assert written[standard[0].id] == written[standard[1].id]
    assert written[slack[0].id] == written[slack[1].id]
    message = json.loads(written[slack[0].id])
    assert set(message) == {"text", "attachments"}
    assert message["text"] == f"service.create: Service {service.id} by system:tests"
    assert message["attachments"][0]["color"] == "#0969da"  # nothing good or bad: neutral
    assert json.loads(written[standard[0].id])["type"] == "service.create"


def test_a_rolled_back_change_takes_its_deliveries_with_it(make_service):
    hook = endpoint(["*"])
    written = WebhookDelivery.objects.filter(endpoint=hook).count()  # its own webhook.create
    with pytest.raises(RuntimeError), transaction.atomic(), acting_as("tests"):
        make_service()
        assert WebhookDelivery.objects.filter(endpoint=hook).count() > written  # written with the change...
        raise RuntimeError("undone")
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == written  # ...and gone with it


def test_nobody_listening_costs_no_body(db):
    endpoint(["release.*"])

    def unasked():
        raise AssertionError("asked for a body nobody wants")

    assert outbox.enqueue("service.create", unasked, unasked) == []
    assert outbox.enqueue("release.create", lambda: {"seq": 7}, lambda: {"type": "Release", "id": "rel-1"})


@pytest.mark.parametrize(
    ("pattern", "action", "wanted"),
    [
        ("*", "release.activate", True),
        ("release.*", "release.activate", True),
        ("release", "release.activate", True),
        ("*.activate", "release.activate", True),
        ("release.activate", "release.activate", True),
        ("release.activate", "release.fail", False),
        ("*.create", "release.activate", False),
        ("service.*", "release.activate", False),
    ],
)
def test_patterns_choose_actions(db, pattern, action, wanted):
    assert endpoint([pattern]).wants(action) is wanted


def test_incidents_are_coloured_by_severity_in_slack_until_resolved(make_service):
    hook = endpoint(["incident.*"], format="slack")
    with acting_as("tests"):
        service = make_service()
        for severity in ("critical", "high", "medium", "low"):
            Incident(service=service, severity=severity, link="https://pd.example.com/1").save()
        incidents.resolve(Incident.objects.get(service=service, severity="critical"))
    colours = [(body["text"].split(":")[0], body["attachments"][0]["color"]) for body in bodies(hook)]
    assert colours == [
        ("incident.create", "#b60205"),
        ("incident.create", "#d93f0b"),
        ("incident.create", "#fbca04"),
        ("incident.create", "#8b949e"),
        ("incident.resolve", "#2da44e"),  # good news is green, however bad the incident was
    ]
