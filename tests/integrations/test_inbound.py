"""Incidents in, as PagerDuty, Alertmanager and a Standard Webhooks sender post them (docs/integrations.md,
"Incidents in"): real signed requests through HTTP to `/api/integrations/{id}/events/`, on a frozen clock. What an
operator sees: the incident (REST), the audit trail, and the integration's delivery log."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from standardwebhooks.webhooks import Webhook

from audit.models import AuditEvent
from incidents.models import Incident
from integrations import signatures
from integrations.models import ReceivedEvent
from tests.api.conftest import Api
from tests.conftest import TOKENS

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PD_SERVICE = "PF9KMXH"  # PagerDuty's service id in its documented examples


def at(**delta) -> str:
    return (NOON + timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture
def checkout(make_service):
    return make_service(id="svc-checkout", name="Checkout")


@dataclass
class Source:
    """An integration as its source knows it: where to post, and the secret it was given."""

    id: str
    secret: str
    path: str

    def post(self, body: bytes | str, content_type="application/json", **headers):
        body = body.encode() if isinstance(body, str) else body
        return Client().post(self.path, body, content_type=content_type, **headers)

    # PagerDuty: v1=<hex HMAC-SHA256 of the raw body>, one per secret, comma-separated.
    def pagerduty(self, payload: dict | bytes, secret: str | None = None, signature: str | None = None, **kw):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if signature is None:
            signature = "v1=" + hmac.new((secret or self.secret).encode(), body, hashlib.sha256).hexdigest()
        return self.post(body, HTTP_X_PAGERDUTY_SIGNATURE=signature, **kw)

    def alertmanager(self, payload: dict, token: str | None = None, **kw):
        return self.post(json.dumps(payload), HTTP_AUTHORIZATION=f"Bearer {token or self.secret}", **kw)

    # Standard Webhooks, signed with the reference library.
    def standard(self, payload: dict | str, msg_id: str, sent: datetime | None = None, secret: str | None = None, **kw):
        body = payload if isinstance(payload, str) else json.dumps(payload)
        sent = sent or NOON
        signature = Webhook(secret or self.secret).sign(msg_id, sent, body)
        headers = {"HTTP_WEBHOOK_ID": msg_id, "HTTP_WEBHOOK_TIMESTAMP": str(int(sent.timestamp()))}
        return self.post(body, HTTP_WEBHOOK_SIGNATURE=signature, **headers, **kw)


def integration(kind: str, service_map: dict | None = None, **fields) -> Source:
    body = {"kind": kind, "name": f"{kind} prod", "serviceMap": service_map or {}, **fields}
    created = Api("admin").post("/api/integrations/", body)
    assert created.status_code == 201, created.content
    data = created.json()
    return Source(data["id"], data["secret"], data["url"].removeprefix("http://testserver"))


def log(source: Source) -> list[dict]:
    """The integration's delivery log as an admin reads it, newest first."""
    answer = Api("admin").get(f"/api/integrations/{source.id}/deliveries/")
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def incident(incident_id: str) -> dict:
    answer = Api("viewer").get(f"/api/incidents/{incident_id}/")
    assert answer.status_code == 200, answer.content
    return answer.json()


def trail(incident_id: str) -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(subject_id=incident_id).order_by("seq").values_list("action", "actor"))


def only_result(answer) -> dict:
    (result,) = answer.json()["results"]
    return result


# --- PagerDuty Webhooks v3 ---


def pd_event(event_type: str, event_id: str, occurred_at: str, incident_id="PGR0VU2", **incident) -> dict:
    """A v3 webhook as PagerDuty documents it (developer.pagerduty.com, Webhooks v3 overview)."""
    status = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}.get(event_type, "triggered")
    priority = incident.pop("priority", "P1")
    data = {
        "id": incident_id,
        "type": "incident",
        "self": f"https://api.pagerduty.com/incidents/{incident_id}",
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "number": 2,
        "status": status,
        "incident_key": "d3640fbd41094207a1c11e58e46b1662",
        "created_at": at(minutes=-3),
        "title": "Checkout is returning 502s",
        "service": {
            "html_url": f"https://acme.pagerduty.com/services/{PD_SERVICE}",
            "id": PD_SERVICE,
            "self": f"https://api.pagerduty.com/services/{PD_SERVICE}",
            "summary": "API Service",
            "type": "service_reference",
        },
        "assignees": [
            {
                "html_url": "https://acme.pagerduty.com/users/PTUXL6G",
                "id": "PTUXL6G",
                "self": "https://api.pagerduty.com/users/PTUXL6G",
                "summary": "User 123",
                "type": "user_reference",
            }
        ],
        "escalation_policy": {
            "html_url": "https://acme.pagerduty.com/escalation_policies/PUS0KTE",
            "id": "PUS0KTE",
            "self": "https://api.pagerduty.com/escalation_policies/PUS0KTE",
            "summary": "Default",
            "type": "escalation_policy_reference",
        },
        "teams": [
            {
                "html_url": "https://acme.pagerduty.com/teams/PFCVPS0",
                "id": "PFCVPS0",
                "self": "https://api.pagerduty.com/teams/PFCVPS0",
                "summary": "Engineering",
                "type": "team_reference",
            }
        ],
        "priority": priority
        and {
            "html_url": "https://acme.pagerduty.com/account/incident_priorities",
            "id": "PSO75BM",
            "self": "https://api.pagerduty.com/priorities/PSO75BM",
            "summary": priority,
            "type": "priority_reference",
        },
        "urgency": "high",
        "conference_bridge": {
            "conference_number": "+1 1234123412,,987654321#",
            "conference_url": "https://example.com",
        },
        "resolve_reason": None,
        **incident,
    }
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": "Tenex Engineer",
                "type": "user_reference",
            },
            "client": {"name": "PagerDuty"},
            "data": data,
        }
    }


@pytest.fixture
def pagerduty(checkout, clock) -> Source:
    return integration("pagerduty", {PD_SERVICE: checkout.pk})


def test_pagerduty_triggered_acknowledged_resolved_round_trip(pagerduty, clock):
    triggered = pagerduty.pagerduty(pd_event("incident.triggered", "01EVT-T", at(minutes=-2)))
    assert triggered.status_code == 202, triggered.content
    result = only_result(triggered)
    assert result["outcome"] == "created" and result["externalId"] == "PGR0VU2"
    created = incident(result["incidentId"])
    assert {k: created[k] for k in ("serviceId", "title", "severity", "status", "link", "startedAt")} == {
        "serviceId": "svc-checkout",
        "title": "Checkout is returning 502s",
        "severity": "critical",  # P1
        "status": "triggered",
        "link": "https://acme.pagerduty.com/incidents/PGR0VU2",
        "startedAt": at(minutes=-3),  # the incident's created_at, not when the event came
    }
    assert created["source"] == "pagerduty" and created["externalId"] == "PGR0VU2"
    assert created["integrationId"] == pagerduty.id

    clock.shift(timedelta(minutes=1))
    acknowledged = pagerduty.pagerduty(pd_event("incident.acknowledged", "01EVT-A", at(minutes=0)))
    assert acknowledged.status_code == 202 and only_result(acknowledged)["outcome"] == "updated"
    assert incident(result["incidentId"])["status"] == "acknowledged"
    assert incident(result["incidentId"])["acknowledgedAt"] == at(minutes=1)

    clock.shift(timedelta(minutes=10))
    resolved = pagerduty.pagerduty(pd_event("incident.resolved", "01EVT-R", at(minutes=10)))
    assert resolved.status_code == 202 and only_result(resolved)["outcome"] == "updated"
    assert incident(result["incidentId"])["status"] == "resolved"

    actor = f"integration:{pagerduty.id}"
    assert trail(result["incidentId"]) == [
        ("incident.create", actor),
        ("incident.acknowledge", actor),
        ("incident.resolve", actor),
    ]
    assert [(e["eventId"], e["eventType"], e["outcome"], e["statusCode"]) for e in log(pagerduty)] == [
        ("01EVT-R", "incident.resolved", "updated", 202),
        ("01EVT-A", "incident.acknowledged", "updated", 202),
        ("01EVT-T", "incident.triggered", "created", 202),
    ]


@pytest.mark.parametrize(
    ("priority", "urgency", "severity"),
    [("P1", "high", "critical"), ("P2", "low", "high"), ("P3", "high", "medium"), ("P4", "high", "low"),
     ("P5", "high", "low"), (None, "high", "high"), (None, "low", "low")],
)  # fmt: skip
def test_pagerduty_severity_follows_the_priority_else_the_urgency(pagerduty, priority, urgency, severity):
    answer = pagerduty.pagerduty(pd_event("incident.triggered", "E1", at(), priority=priority, urgency=urgency))
    assert answer.status_code == 202, answer.content
    assert incident(only_result(answer)["incidentId"])["severity"] == severity


# PagerDuty's own published signing example (go-pagerduty, webhookv3/webhookv3_test.go): a secret, a raw body and
# the X-PagerDuty-Signature PagerDuty computed for them.
PD_EXAMPLE_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PD_EXAMPLE_BODY = (
    b'{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident",'
    b'"occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV",'
    b'"id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":'
    b'"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":'
    b'"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2",'
    b'"number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":'
    b'"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH",'
    b'"summary":"API Service","type":"service_reference"},"assignees":[{"html_url":'
    b'"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G",'
    b'"summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":'
    b'"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":'
    b'"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":'
    b'"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0",'
    b'"self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],"priority":'
    b'{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":'
    b'"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},"urgency":"high",'
    b'"conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},"resolve_reason":null}}}'
)
PD_EXAMPLE_SIGNATURE = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_EXAMPLE_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"


def test_pagerdutys_published_signature_example_verifies_and_its_mismatch_does_not():
    signatures.verify_pagerduty([PD_EXAMPLE_SECRET], PD_EXAMPLE_SIGNATURE, PD_EXAMPLE_BODY)
    signatures.verify_pagerduty([PD_EXAMPLE_SECRET], f"{PD_EXAMPLE_MISMATCH},{PD_EXAMPLE_SIGNATURE}", PD_EXAMPLE_BODY)
    for header in (PD_EXAMPLE_MISMATCH, "", PD_EXAMPLE_SIGNATURE.replace("v1=", "v0=")):
        with pytest.raises(signatures.SignatureRefused):
            signatures.verify_pagerduty([PD_EXAMPLE_SECRET], header, PD_EXAMPLE_BODY)
    with pytest.raises(signatures.SignatureRefused):  # one byte of the body changed
        signatures.verify_pagerduty([PD_EXAMPLE_SECRET], PD_EXAMPLE_SIGNATURE, PD_EXAMPLE_BODY.replace(b"P1", b"P2"))


def test_pagerdutys_published_example_reaches_the_log_through_http(checkout, clock):
    source = integration("pagerduty", {PD_SERVICE: checkout.pk}, secret=PD_EXAMPLE_SECRET)
    assert source.secret == PD_EXAMPLE_SECRET  # PagerDuty's secret, as given
    answer = source.pagerduty(PD_EXAMPLE_BODY, signature=PD_EXAMPLE_SIGNATURE)  # the raw bytes PagerDuty signed
    assert answer.status_code == 202, answer.content
    assert (
        answer.json()["outcome"] == "ignored" and "incident.priority_updated is not followed" in answer.json()["detail"]
    )
    (entry,) = log(source)
    assert entry["eventId"] == "01BWDWL3NYY7LUFPZCC28QUCMK" and entry["outcome"] == "ignored"
    assert not Incident.objects.exists()


def test_a_repeated_event_id_changes_nothing_and_is_logged_as_a_duplicate(pagerduty, clock):
    first = pagerduty.pagerduty(pd_event("incident.triggered", "01EVT-T", at(minutes=-2)))
    incident_id = only_result(first)["incidentId"]
    audited = AuditEvent.objects.count()
    clock.shift(timedelta(seconds=30))
    again = pagerduty.pagerduty(pd_event("incident.triggered", "01EVT-T", at(minutes=-2)))  # PagerDuty's retry
    assert again.status_code == 202
    assert again.json()["outcome"] == "duplicate" and "01EVT-T was received before" in again.json()["detail"]
    assert Incident.objects.count() == 1 and AuditEvent.objects.count() == audited
    assert [(e["eventId"], e["outcome"]) for e in log(pagerduty)] == [("01EVT-T", "duplicate"), ("01EVT-T", "created")]
    assert ReceivedEvent.objects.filter(duplicate=True).count() == 1
    assert incident(incident_id)["status"] == "triggered"


def test_an_event_older_than_one_applied_changes_nothing(pagerduty, clock):
    pagerduty.pagerduty(pd_event("incident.triggered", "E-T", at(minutes=-2)))
    resolved = only_result(pagerduty.pagerduty(pd_event("incident.resolved", "E-R", at(minutes=-1))))
    audited = AuditEvent.objects.count()
    for event_type, event_id in (("incident.acknowledged", "E-A"), ("incident.triggered", "E-T2")):
        late = pagerduty.pagerduty(pd_event(event_type, event_id, at(minutes=-1, seconds=-30)))
        assert late.status_code == 202
        assert only_result(late)["outcome"] == "unchanged"
        assert "older than incident.resolved" in only_result(late)["reason"]
    stored = incident(resolved["incidentId"])
    assert stored["status"] == "resolved" and stored["acknowledgedAt"] is None
    assert Incident.objects.count() == 1 and AuditEvent.objects.count() == audited


def test_a_resolved_event_for_an_unknown_incident_creates_it_resolved(pagerduty, clock):
    resolved = pagerduty.pagerduty(pd_event("incident.resolved", "E-R", at(minutes=-1)))
    assert resolved.status_code == 202
    result = only_result(resolved)
    assert result["outcome"] == "created"
    assert incident(result["incidentId"])["status"] == "resolved"
    # The triggered event arrives after it, older: still one incident, still resolved.
    late = pagerduty.pagerduty(pd_event("incident.triggered", "E-T", at(minutes=-2)))
    assert only_result(late)["outcome"] == "unchanged" and Incident.objects.count() == 1
    actor = f"integration:{pagerduty.id}"
    assert trail(result["incidentId"]) == [("incident.create", actor), ("incident.resolve", actor)]


def test_several_signatures_are_accepted_while_pagerduty_rotates(pagerduty):
    body = json.dumps(pd_event("incident.triggered", "E1", at())).encode()
    good = "v1=" + hmac.new(pagerduty.secret.encode(), body, hashlib.sha256).hexdigest()
    answer = pagerduty.pagerduty(body, signature=f"v1=aaa,{good}")
    assert answer.status_code == 202 and answer.json()["outcome"] == "created"


@pytest.mark.parametrize(
    ("signature", "says"),
    [
        (None, "X-PagerDuty-Signature is required"),
        ("v1=" + "0" * 64, "matches none of the integration's secrets"),
        ("v1=aaa,v1=bbb", "matches none"),
        ("sha256=" + "0" * 64, "is required"),
    ],
)
def test_a_bad_or_missing_signature_is_a_401_and_stores_nothing(pagerduty, signature, says):
    body = json.dumps(pd_event("incident.triggered", "E1", at())).encode()
    headers = {} if signature is None else {"HTTP_X_PAGERDUTY_SIGNATURE": signature}
    answer = pagerduty.post(body, **headers)
    assert answer.status_code == 401 and says in answer.json()["detail"]
    # Signed with another secret (someone else's subscription):
    assert pagerduty.pagerduty(body, secret="another subscription's secret").status_code == 401
    assert not ReceivedEvent.objects.exists() and not Incident.objects.exists()


DST_NIGHT = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Europe's clocks go forward at 01:00 UTC


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_after_a_rotation_both_secrets_verify_for_24_hours_across_a_dst_change(checkout, settings, zone):
    settings.TIME_ZONE = zone
    with time_machine.travel(DST_NIGHT, tick=False) as clock:
        source = integration("pagerduty", {PD_SERVICE: checkout.pk})
        new_secret = "the-rotated-pagerduty-secret-0123"
        rotated = Api("admin").post(f"/api/integrations/{source.id}/rotate-secret/", {"secret": new_secret})
        assert rotated.status_code == 200, rotated.content
        assert rotated.json()["secret"] == new_secret
        assert rotated.json()["previousSecretValidUntil"] == "2026-03-30T00:30:00Z"  # 24 hours, not a wall-clock day

        def send(n: int, secret: str) -> int:
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            return source.pagerduty(pd_event("incident.triggered", f"E{n}", now, f"PINC{n}"), secret=secret).status_code

        assert (send(1, source.secret), send(2, new_secret)) == (202, 202)
        clock.move_to(DST_NIGHT + timedelta(hours=23, minutes=59))  # 23 h on the wall clock had passed at 23:00
        assert (send(3, source.secret), send(4, new_secret)) == (202, 202)
        clock.move_to(DST_NIGHT + timedelta(hours=24))
        assert (send(5, source.secret), send(6, new_secret)) == (401, 202)
        assert ReceivedEvent.objects.count() == 5


def test_a_generated_secret_rotates_too_and_alertmanager_takes_no_secret_of_its_own(checkout, clock):
    source = integration("alertmanager", {"checkout": checkout.pk})
    refused = Api("admin").post(f"/api/integrations/{source.id}/rotate-secret/", {"secret": "x" * 20})
    assert refused.status_code == 400 and "secret" in refused.json()
    rotated = Api("admin").post(f"/api/integrations/{source.id}/rotate-secret/")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != source.secret and new.startswith("whsec_")
    firing = am_payload(am_alert("firing"))
    assert source.alertmanager(firing, token=source.secret).status_code == 202
    assert source.alertmanager(firing, token=new).status_code == 202
    clock.shift(timedelta(hours=24))
    assert source.alertmanager(firing, token=source.secret).status_code == 401
    assert source.alertmanager(firing, token=new).status_code == 202


def test_an_unmapped_pagerduty_service_is_a_202_logged_with_the_reason(checkout, clock):
    source = integration("pagerduty", {"POTHER1": checkout.pk})
    answer = source.pagerduty(pd_event("incident.triggered", "E1", at()))
    assert answer.status_code == 202
    (entry,) = log(source)
    assert entry["outcome"] == "ignored" and entry["statusCode"] == 202
    assert f"PagerDuty service '{PD_SERVICE}' (API Service) maps to no service" in entry["reason"]
    assert "serviceMap" in entry["reason"] and answer.json()["detail"] == entry["reason"]
    assert not Incident.objects.exists()


def test_pagerdutys_ping_is_logged_as_ignored(pagerduty):
    ping = {
        "event": {
            "id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
            "event_type": "pagey.ping",
            "resource_type": "pagey",
            "occurred_at": at(),
            "agent": None,
            "client": None,
            "data": {"message": "Hello from your friend Pagey!", "type": "ping"},
        }
    }
    answer = pagerduty.pagerduty(ping)
    assert answer.status_code == 202 and answer.json()["outcome"] == "ignored"
    assert [e["eventType"] for e in log(pagerduty)] == ["pagey.ping"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"event": {"id": "E1", ', "application/json", 400, "the body is not JSON"),
        (b'["not", "an", "object"]', "application/json", 400, "a JSON object"),
        (b'{"event": {"id": "E1"}}', "text/plain", 415, "Content-Type: application/json"),
        (b'{"messages": []}', "application/json", 400, "`event` object"),  # a v2 webhook
        (json.dumps(pd_event("incident.triggered", "E1", "yesterday")).encode(), "application/json", 400,
         "event.occurred_at must be an RFC 3339 time"),
    ],
)  # fmt: skip
def test_a_signed_but_malformed_request_is_a_4xx_with_the_reason_and_logged(
    pagerduty, body, content_type, status, says
):
    answer = pagerduty.pagerduty(body, content_type=content_type)
    assert answer.status_code == status, answer.content
    assert says in answer.json()["detail"]
    (entry,) = log(pagerduty)
    assert entry["outcome"] == "rejected" and entry["statusCode"] == status and says in entry["reason"]
    assert not Incident.objects.exists()


def test_an_incident_the_model_refuses_is_a_422_naming_the_field(pagerduty):
    answer = pagerduty.pagerduty(pd_event("incident.triggered", "E1", at(), created_at=at(hours=1)))
    assert answer.status_code == 422
    assert "started_at" in answer.json()["detail"] and "5 minutes ahead" in answer.json()["detail"]
    assert log(pagerduty)[0]["outcome"] == "rejected" and not Incident.objects.exists()


def test_a_body_over_1_mib_is_a_413_and_stores_nothing(pagerduty):
    event = pd_event("incident.triggered", "E1", at())
    event["event"]["data"]["description"] = "x" * (1024 * 1024)
    answer = pagerduty.pagerduty(event)
    assert answer.status_code == 413
    assert not ReceivedEvent.objects.exists() and not Incident.objects.exists()


def test_an_unknown_integration_is_a_404(clock):
    answer = Client().post("/api/integrations/int-nosuchthing1/events/", b"{}", content_type="application/json")
    assert answer.status_code == 404


# --- Prometheus Alertmanager, webhook payload version 4 ---


def am_alert(status="firing", fingerprint="c6ac2e5b1e0a4f8d", starts=None, service="checkout", **fields) -> dict:
    labels = {"alertname": "HighErrorRate", "job": "checkout", "instance": "10.0.3.7:8080", "severity": "critical"}
    labels |= {"service": service} if service is not None else {}
    labels |= fields.pop("labels", {})
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": "Checkout 5xx rate above 5%",
            "description": "5.3% of requests to checkout failed over the last 5 minutes.",
            "runbook_url": "https://runbooks.example.com/checkout/5xx",
        },
        "startsAt": starts or "2026-03-02T11:57:30.123456789Z",  # Go's RFC 3339 with nanoseconds
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else at(),
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=job%3Acheckout_5xx%3Arate5m+%3E+0.05&g0.tab=1",
        "fingerprint": fingerprint,
        **fields,
    }


def am_payload(*alerts: dict) -> dict:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "controlplane",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
def alertmanager(checkout, clock) -> Source:
    return integration("alertmanager", {"checkout": checkout.pk})


def test_alertmanager_firing_then_resolved_round_trip(alertmanager, clock):
    firing = alertmanager.alertmanager(am_payload(am_alert("firing")))
    assert firing.status_code == 202, firing.content
    result = only_result(firing)
    assert result["outcome"] == "created" and result["externalId"] == "c6ac2e5b1e0a4f8d"
    created = incident(result["incidentId"])
    assert {k: created[k] for k in ("serviceId", "title", "severity", "status", "startedAt", "source")} == {
        "serviceId": "svc-checkout",  # the `service` label, through the serviceMap
        "title": "Checkout 5xx rate above 5%",  # annotations.summary
        "severity": "critical",
        "status": "triggered",
        "startedAt": "2026-03-02T11:57:30.123456Z",
        "source": "alertmanager",
    }
    assert created["link"].startswith("http://prometheus.example.com:9090/graph?")

    clock.shift(timedelta(minutes=1))
    repeated = alertmanager.alertmanager(am_payload(am_alert("firing")))  # Alertmanager's repeat_interval
    assert only_result(repeated)["outcome"] == "unchanged" and Incident.objects.count() == 1

    clock.shift(timedelta(minutes=5))
    resolved = alertmanager.alertmanager(am_payload(am_alert("resolved")))
    assert only_result(resolved)["outcome"] == "updated"
    assert incident(result["incidentId"])["status"] == "resolved"
    actor = f"integration:{alertmanager.id}"
    assert trail(result["incidentId"]) == [("incident.create", actor), ("incident.resolve", actor)]

    # The same alert fires again, later: a new incident.
    clock.shift(timedelta(hours=1))
    again = alertmanager.alertmanager(am_payload(am_alert("firing", starts=at(hours=1))))
    second = only_result(again)
    assert second["outcome"] == "created" and second["incidentId"] != result["incidentId"]
    assert incident(second["incidentId"])["status"] == "triggered"
    assert incident(result["incidentId"])["status"] == "resolved"
    assert [e["outcome"] for e in log(alertmanager)] == ["created", "updated", "unchanged", "created"]


def test_a_late_notification_about_an_earlier_firing_leaves_the_later_incident_be(alertmanager, clock):
    first = only_result(alertmanager.alertmanager(am_payload(am_alert("firing", starts=at(minutes=-5)))))
    alertmanager.alertmanager(am_payload(am_alert("resolved", starts=at(minutes=-5))))
    clock.shift(timedelta(minutes=30))
    second = only_result(alertmanager.alertmanager(am_payload(am_alert("firing", starts=at(minutes=29)))))
    assert second["outcome"] == "created"
    for status in ("resolved", "firing"):  # the first episode's notifications, retried late
        late = only_result(alertmanager.alertmanager(am_payload(am_alert(status, starts=at(minutes=-5)))))
        assert late["outcome"] == "unchanged" and "before this incident" in late["reason"]
    assert incident(second["incidentId"])["status"] == "triggered"
    assert incident(first["incidentId"])["status"] == "resolved" and Incident.objects.count() == 2
    # Prometheus restarted and the alert's startsAt moved on while it still fires: the open incident goes on,
    # and resolves when the alert does.
    assert only_result(alertmanager.alertmanager(am_payload(am_alert(starts=at(minutes=31)))))["outcome"] == "unchanged"
    resolved = only_result(alertmanager.alertmanager(am_payload(am_alert("resolved", starts=at(minutes=31)))))
    assert resolved["outcome"] == "updated" and resolved["incidentId"] == second["incidentId"]
    assert incident(second["incidentId"])["status"] == "resolved"


def test_alertmanager_takes_a_service_id_label_and_reads_several_alerts(alertmanager, checkout):
    answer = alertmanager.alertmanager(
        am_payload(
            am_alert(fingerprint="aaaa000000000001", service=checkout.pk, labels={"severity": "warning"}),
            am_alert(fingerprint="aaaa000000000002", service="billing"),  # not mapped, not a service
        )
    )
    assert answer.status_code == 202
    mapped, unmapped = answer.json()["results"]
    assert mapped["outcome"] == "created" and incident(mapped["incidentId"])["severity"] == "medium"
    assert unmapped["outcome"] == "ignored" and "'billing' maps to no service" in unmapped["reason"]
    assert answer.json()["outcome"] == "created"


def test_alertmanager_links_to_an_address_that_is_a_url(alertmanager):
    """Prometheus names itself by its host name unless --web.external-url is set (`http://prometheus-k8s-0:9090`), which
    is no absolute URL: the incident then links to Alertmanager's external URL instead of being refused."""
    alert = am_alert(generatorURL="http://prometheus-k8s-0:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1")
    answer = alertmanager.alertmanager(am_payload(alert))
    assert answer.status_code == 202, answer.content
    assert incident(only_result(answer)["incidentId"])["link"] == "http://alertmanager.example.com:9093"


@pytest.mark.parametrize("token", ["wrong-secret", TOKENS["admin"], None])
def test_a_wrong_bearer_is_a_401_from_the_integration_and_stores_nothing(alertmanager, token):
    """The events path is the integration's: the identity middleware does not take a dev token sent there as an
    identity, nor refuse an unknown one as its own."""
    payload = json.dumps(am_payload(am_alert()))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    answer = alertmanager.post(payload, **headers)
    assert answer.status_code == 401
    says = "Authorization: Bearer <the integration's secret> is required" if token is None else "not the integration's"
    assert says in answer.json()["detail"]
    assert "WWW-Authenticate" not in answer.headers  # not the identity middleware's refusal
    assert not ReceivedEvent.objects.exists() and not Incident.objects.exists()


def test_a_malformed_alert_rejects_the_whole_request_with_no_change_half_made(alertmanager, clock):
    opened = only_result(alertmanager.alertmanager(am_payload(am_alert(fingerprint="aaaa000000000001"))))
    audited = AuditEvent.objects.count()
    clock.shift(timedelta(seconds=30))
    broken = am_alert(fingerprint="aaaa000000000003")
    del broken["startsAt"]
    answer = alertmanager.alertmanager(
        am_payload(
            am_alert("resolved", fingerprint="aaaa000000000001"),  # would resolve the open one
            am_alert(fingerprint="aaaa000000000002"),  # would create one
            broken,
        )
    )
    assert answer.status_code == 400
    assert "alerts[2].startsAt" in answer.json()["detail"]
    assert answer.json()["results"] == []  # nothing claimed for alerts that were rolled back
    assert incident(opened["incidentId"])["status"] == "triggered"
    assert Incident.objects.count() == 1 and AuditEvent.objects.count() == audited
    entry = log(alertmanager)[0]
    assert entry["outcome"] == "rejected" and entry["results"] == [] and "alerts[2].startsAt" in entry["reason"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"version": "3"}, "version 4"),
        ({"alerts": {"fingerprint": "x"}}, "alerts must be a list"),
    ],
)
def test_an_alertmanager_payload_it_cannot_read_is_a_400_logged(alertmanager, change, says):
    answer = alertmanager.alertmanager(am_payload(am_alert()) | change)
    assert answer.status_code == 400 and says in answer.json()["detail"]
    assert log(alertmanager)[0]["outcome"] == "rejected" and not Incident.objects.exists()


# --- generic: Standard Webhooks ---


@pytest.fixture
def generic(checkout, clock) -> Source:
    return integration("generic", {"checkout": checkout.pk})


def generic_event(status="triggered", **fields) -> dict:
    return {
        "externalId": "synthetic-checkout-42",
        "serviceId": "svc-checkout",
        "severity": "high",
        "title": "Synthetic checkout probe failing",
        "status": status,
        "link": "https://status.example.com/checks/42",
        "startedAt": at(minutes=-4),
    } | fields


def test_a_standard_webhooks_sender_creates_and_moves_incidents(generic, clock):
    created = generic.standard(generic_event(), "msg_2Ld0mQ3XHVk1")
    assert created.status_code == 202, created.content
    result = only_result(created)
    stored = incident(result["incidentId"])
    assert (stored["serviceId"], stored["severity"], stored["title"], stored["startedAt"], stored["source"]) == (
        "svc-checkout", "high", "Synthetic checkout probe failing", at(minutes=-4), "generic",
    )  # fmt: skip
    assert stored["externalId"] == "synthetic-checkout-42"
    # a key of the serviceMap names a service too
    other = generic.standard(generic_event(externalId="x-2", serviceId="checkout"), "msg_2Ld0mQ3XHVk2")
    assert incident(only_result(other)["incidentId"])["serviceId"] == "svc-checkout"

    clock.shift(timedelta(minutes=1))
    acked = generic.standard(generic_event("acknowledged"), "msg_2Ld0mQ3XHVk3", sent=NOON + timedelta(minutes=1))
    assert only_result(acked)["outcome"] == "updated" and incident(result["incidentId"])["status"] == "acknowledged"
    resolved = generic.standard(generic_event("resolved"), "msg_2Ld0mQ3XHVk4", sent=NOON + timedelta(minutes=1))
    assert only_result(resolved)["outcome"] == "updated" and incident(result["incidentId"])["status"] == "resolved"
    actor = f"integration:{generic.id}"
    assert [a for a, _ in trail(result["incidentId"])] == [
        "incident.create",
        "incident.acknowledge",
        "incident.resolve",
    ]
    assert {who for _, who in trail(result["incidentId"])} == {actor}

    again = generic.standard(generic_event("resolved"), "msg_2Ld0mQ3XHVk4", sent=NOON + timedelta(minutes=1))
    assert again.status_code == 202 and again.json()["outcome"] == "duplicate"


@pytest.mark.parametrize("off", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_standard_webhook_signed_6_minutes_off_is_a_401_and_stores_nothing(generic, off):
    answer = generic.standard(generic_event(), "msg_1", sent=NOON + off)
    assert answer.status_code == 401 and "more than 5 minutes" in answer.json()["detail"]
    assert generic.standard(generic_event(), "msg_1", sent=NOON + off / 6 * 4).status_code == 202  # 4 minutes: fine
    assert ReceivedEvent.objects.count() == 1


def test_a_standard_webhook_with_a_bad_signature_is_a_401(generic):
    other = signatures.new_secret()
    assert generic.standard(generic_event(), "msg_1", secret=other).status_code == 401
    unsigned = generic.post(json.dumps(generic_event()), HTTP_WEBHOOK_ID="msg_1")
    assert unsigned.status_code == 401 and "webhook-signature" in unsigned.json()["detail"]
    assert not ReceivedEvent.objects.exists()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"priority": "P1"}, "unknown field priority"),
        ({"serviceId": "svc-nowhere"}, "serviceId: unknown service 'svc-nowhere'"),
        ({"status": "open"}, "status must be one of triggered, acknowledged, resolved"),
        ({"severity": "sev1"}, "severity must be one of"),
        ({"link": "javascript:alert(1)"}, "link"),
    ],
)
def test_a_generic_event_that_breaks_a_rule_is_a_4xx_naming_it_and_logged(generic, fields, says):
    answer = generic.standard(generic_event(**fields), "msg_1")
    assert 400 <= answer.status_code < 500 and says in answer.json()["detail"], answer.content
    (entry,) = log(generic)
    assert entry["outcome"] == "rejected" and says in entry["reason"] and entry["eventId"] == "msg_1"
    assert not Incident.objects.exists()
    # Corrected, the same message id is taken: a rejected one does not count as received.
    assert only_result(generic.standard(generic_event(), "msg_1"))["outcome"] == "created"
