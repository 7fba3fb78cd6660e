"""Integrations and webhook endpoints over REST, as an admin configures them (docs/integrations.md): secrets shown
once and never again (not in a read, not in the audit trail), admins only, every change audited, and lists whose
query counts do not grow with their length."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from audit.models import AuditEvent
from controlplane import sealed
from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from integrations import lifecycle
from integrations.models import Integration, ReceivedEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook"  # nothing is sent in these tests: no delivery function is called


def at(**delta) -> str:
    return (NOON + timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def private_targets(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def checkout(make_service):
    return make_service(id="svc-checkout", name="Checkout")


@pytest.fixture
def admin():
    return Api("admin")


def everything_audited() -> str:
    """Every audit row, as JSON: what a reader of the trail (or its mirror) could see."""
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def everything_delivered() -> str:
    """Every webhook body written: what a subscriber to `*` would be sent."""
    return json.dumps(list(WebhookDelivery.objects.values_list("body", flat=True)))


# --- integrations ---


def create(admin, **fields):
    body = {"kind": "pagerduty", "name": "PagerDuty prod", **fields}
    return admin.post("/api/integrations/", body)


def test_an_admin_creates_an_integration_and_sees_its_secret_once(admin, checkout, clock):
    created = create(admin, serviceMap={"PF9KMXH": checkout.pk})
    assert created.status_code == 201, created.content
    body = created.json()
    integration_id, secret = body["id"], body["secret"]
    assert integration_id.startswith("int-") and created.headers["Location"] == f"/api/integrations/{integration_id}/"
    assert body["url"] == f"http://testserver/api/integrations/{integration_id}/events/"
    assert secret.startswith("whsec_") and len(secret) > 40
    assert {
        k: body[k] for k in ("kind", "name", "serviceMap", "createdBy", "createdAt", "previousSecretValidUntil")
    } == {
        "kind": "pagerduty",
        "name": "PagerDuty prod",
        "serviceMap": {"PF9KMXH": "svc-checkout"},
        "createdBy": "dev-admin",
        "createdAt": at(),
        "previousSecretValidUntil": None,
    }
    detail = admin.get(f"/api/integrations/{integration_id}/")
    listed = admin.get("/api/integrations/")
    assert detail.json() == {k: v for k, v in body.items() if k != "secret"}
    assert listed.json()["results"] == [detail.json()]
    assert secret not in detail.content.decode() + listed.content.decode()
    assert secret not in str(Integration.objects.values().get(pk=integration_id))  # sealed at rest
    (event,) = AuditEvent.objects.filter(action="integration.create")
    assert (event.actor, event.subject_id, event.metadata["serviceMap"]) == (
        "dev-admin",
        integration_id,
        body["serviceMap"],
    )


def test_a_rotated_or_given_secret_reaches_neither_a_read_nor_the_audit_trail_nor_a_webhook(admin, checkout, clock):
    hook = admin.post("/api/webhooks/", {"url": HOOK, "events": ["*"]})  # a subscriber to every audit action
    assert hook.status_code == 201
    given = "pd-signing-secret-0123456789abcdef"
    created = create(admin, serviceMap={"PF9KMXH": checkout.pk}, secret=given)
    assert created.status_code == 201 and created.json()["secret"] == given
    integration_id = created.json()["id"]
    refused = admin.post(f"/api/integrations/{integration_id}/rotate-secret/")
    assert refused.status_code == 400 and "PagerDuty" in refused.json()["secret"][0]  # only PagerDuty signs
    rotated = admin.post(f"/api/integrations/{integration_id}/rotate-secret/", {"secret": "pd-rotated-" + "s" * 20})
    new = rotated.json()["secret"]
    generic = create(admin, kind="generic", name="Synthetic checks").json()
    admin.post(f"/api/webhooks/{hook.json()['id']}/rotate-secret/")
    secrets = [given, new, generic["secret"], hook.json()["secret"]]
    reads = "".join(
        admin.get(url).content.decode()
        for url in ("/api/integrations/", f"/api/integrations/{integration_id}/", "/api/webhooks/")
    )
    audited, delivered = everything_audited(), everything_delivered()
    assert "integration.rotate" in audited and "integration.create" in delivered  # the trail and its webhooks ran
    for secret in secrets:
        assert secret not in reads and secret not in audited and secret not in delivered
        assert secret.removeprefix("whsec_") not in audited + delivered


def test_only_admins_see_or_change_integrations(checkout, clock):
    integration_id = create(Api("admin")).json()["id"]
    for role in ("viewer", "deployer"):
        client = Api(role)
        assert client.get("/api/integrations/").status_code == 403
        assert client.get(f"/api/integrations/{integration_id}/").status_code == 403
        assert client.get(f"/api/integrations/{integration_id}/deliveries/").status_code == 403
        assert create(client).status_code == 403
        assert client.patch(f"/api/integrations/{integration_id}/", {"name": "mine"}).status_code == 403
        assert client.post(f"/api/integrations/{integration_id}/rotate-secret/").status_code == 403
    assert Api(None).get("/api/integrations/").status_code == 401
    assert Integration.objects.count() == 1 and Integration.objects.get().name == "PagerDuty prod"
    assert not AuditEvent.objects.filter(action="integration.rotate").exists()


@pytest.mark.parametrize(
    ("fields", "key", "says"),
    [
        ({"token": "abc"}, "token", "not a field"),
        ({"serviceMap": {"PF9KMXH": "svc-nowhere"}}, "serviceMap", "unknown service 'svc-nowhere'"),
        ({"serviceMap": {"PF9KMXH": 7}}, "serviceMap", ""),
        ({"kind": "opsgenie"}, "kind", "not a valid choice"),
        ({"name": " "}, "name", ""),
        ({"kind": "alertmanager", "secret": "a-secret-of-my-own-choosing"}, "secret", "made by the control plane"),
        ({"kind": "generic", "secret": "a-secret-of-my-own-choosing"}, "secret", "made by the control plane"),
        ({"secret": "short"}, "secret", "16-200 characters"),
    ],
)
def test_an_integration_that_breaks_a_rule_is_a_400_naming_the_field(admin, checkout, fields, key, says):
    answer = create(admin, **fields)
    assert answer.status_code == 400, answer.content
    assert key in answer.json() and says in " ".join(answer.json()[key]), answer.json()
    assert not Integration.objects.exists() and not AuditEvent.objects.filter(action__startswith="integration").exists()


def test_patching_the_service_map_is_audited_and_the_kind_stays(admin, checkout, make_service, clock):
    integration_id = create(admin, serviceMap={"PF9KMXH": checkout.pk}).json()["id"]
    billing = make_service(id="svc-billing", name="Billing")
    changed = admin.patch(f"/api/integrations/{integration_id}/", {"serviceMap": {"PBILL01": billing.pk}})
    assert changed.status_code == 200, changed.content
    assert changed.json()["serviceMap"] == {"PBILL01": "svc-billing"} and "secret" not in changed.json()
    (event,) = AuditEvent.objects.filter(action="integration.update")
    assert event.actor == "dev-admin" and event.subject_id == integration_id
    assert event.metadata["changes"] == {"serviceMap": [{"PF9KMXH": "svc-checkout"}, {"PBILL01": "svc-billing"}]}

    refused = admin.patch(f"/api/integrations/{integration_id}/", {"serviceMap": {"PBILL01": "svc-gone"}})
    assert refused.status_code == 400 and "serviceMap" in refused.json()
    kind = admin.patch(f"/api/integrations/{integration_id}/", {"kind": "generic"})
    assert kind.status_code == 400 and "kind" in kind.json()
    unchanged = admin.patch(f"/api/integrations/{integration_id}/", {"name": "PagerDuty prod"})
    assert unchanged.status_code == 200
    assert AuditEvent.objects.filter(action="integration.update").count() == 1  # nothing changed, nothing audited
    assert Integration.objects.get().kind == "pagerduty"


def pagerduty_event(event_id: str, created_at: str) -> bytes:
    return json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": "incident.triggered",
                "resource_type": "incident",
                "occurred_at": created_at,
                "agent": None,
                "client": None,
                "data": {
                    "id": f"P{event_id}",
                    "type": "incident",
                    "html_url": f"https://acme.pagerduty.com/incidents/P{event_id}",
                    "created_at": created_at,
                    "title": "Checkout is returning 502s",
                    "status": "triggered",
                    "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
                    "priority": None,
                    "urgency": "high",
                },
            }
        }
    ).encode()


def deliver(integration: dict, body: bytes, secret: str | None = None, content_type="application/json"):
    signature = "v1=" + hmac.new((secret or integration["secret"]).encode(), body, hashlib.sha256).hexdigest()
    path = integration["url"].removeprefix("http://testserver")
    return Client().post(path, body, content_type=content_type, HTTP_X_PAGERDUTY_SIGNATURE=signature)


def test_the_delivery_log_lists_what_was_received_newest_first(admin, checkout, clock):
    integration = create(admin, serviceMap={"PF9KMXH": checkout.pk}).json()
    assert deliver(integration, pagerduty_event("E1", at())).status_code == 202
    clock.shift(timedelta(seconds=5))
    assert deliver(integration, b"{", content_type="application/json").status_code == 400
    clock.shift(timedelta(seconds=5))
    assert deliver(integration, pagerduty_event("E1", at())).status_code == 202  # PagerDuty retried
    clock.shift(timedelta(seconds=5))
    assert deliver(integration, pagerduty_event("E2", at(seconds=15)), secret="someone else").status_code == 401
    log = admin.get(f"/api/integrations/{integration['id']}/deliveries/")
    assert log.status_code == 200
    entries = log.json()["results"]
    assert [(e["receivedAt"], e["statusCode"], e["outcome"]) for e in entries] == [
        (at(seconds=10), 202, "duplicate"),
        (at(seconds=5), 400, "rejected"),
        (at(), 202, "created"),
    ]  # the forged request is not there: anyone could have sent it
    first = entries[-1]
    assert (first["eventId"], first["eventType"], first["externalId"], first["occurredAt"]) == (
        "E1", "incident.triggered", "PE1", at(),
    )  # fmt: skip
    assert first["results"][0]["outcome"] == "created" and first["results"][0]["incidentId"].startswith("inc-")
    assert "not JSON" in entries[1]["reason"]
    assert admin.get("/api/integrations/int-nosuchthing1/deliveries/").status_code == 404


# --- webhook endpoints ---


def webhook(admin, **fields):
    return admin.post("/api/webhooks/", {"url": HOOK, "events": ["release.*", "incident.*"], **fields})


def test_an_admin_subscribes_a_url_and_sees_its_secret_once(admin, clock):
    created = webhook(admin, description="ops channel bridge")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["id"].startswith("whk-") and created.headers["Location"] == f"/api/webhooks/{body['id']}/"
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert {k: body[k] for k in ("url", "events", "format", "description", "enabled", "createdBy", "createdAt")} == {
        "url": HOOK,
        "events": ["release.*", "incident.*"],
        "format": "standard",
        "description": "ops channel bridge",
        "enabled": True,
        "createdBy": "dev-admin",
        "createdAt": at(),
    }
    detail = admin.get(f"/api/webhooks/{body['id']}/")
    assert detail.status_code == 200 and detail.json() == {k: v for k, v in body.items() if k != "secret"}
    assert admin.get("/api/webhooks/").json()["results"] == [detail.json()]
    (event,) = AuditEvent.objects.filter(action="webhook.create")
    assert event.metadata["host"] == "127.0.0.1:9" and HOOK not in everything_audited()  # the host, never the URL
    assert body["secret"] not in everything_audited()


@pytest.mark.parametrize(
    ("fields", "key", "says"),
    [
        ({"events": ["release."]}, "events", "is not an action or pattern"),
        ({"events": ["deployment.*"]}, "events", "names no audit action"),
        ({"events": []}, "events", "non-empty"),
        ({"events": ["release.*", "release.*"]}, "events", "must not repeat"),
        ({"url": "ftp://127.0.0.1/hook"}, "url", "absolute http(s) URL"),
        ({"url": "hooks.example.com/in"}, "url", "absolute http(s) URL"),
        ({"url": "http://user:pw@127.0.0.1:9/hook"}, "url", "user name or password"),
        ({"format": "teams"}, "format", "not a valid choice"),
        ({"secret": "whsec_mine"}, "secret", "not a field"),
    ],
)
def test_a_webhook_that_breaks_a_rule_is_a_400_naming_the_field(admin, fields, key, says):
    answer = webhook(admin, **fields)
    assert answer.status_code == 400, answer.content
    assert key in answer.json() and says in " ".join(answer.json()[key]), answer.json()
    assert not WebhookEndpoint.objects.exists()


def test_a_private_target_is_refused_unless_allowed(admin, settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False
    refused = webhook(admin)
    assert refused.status_code == 400 and "url" in refused.json()
    assert "CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE" in " ".join(refused.json()["url"])
    assert not WebhookEndpoint.objects.exists()


def test_every_broken_rule_of_a_webhook_is_said_at_once(admin, settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False
    refused = admin.post("/api/webhooks/", {"url": "http://127.0.0.1/hook", "events": ["relase.*"]})
    assert refused.status_code == 400
    assert "resolves to 127.0.0.1, a loopback address" in " ".join(refused.json()["url"])
    assert "'relase.*' names no audit action" in " ".join(refused.json()["events"])


def test_only_admins_see_or_change_webhooks(clock):
    hook = webhook(Api("admin")).json()
    for role in ("viewer", "deployer"):
        client = Api(role)
        assert client.get("/api/webhooks/").status_code == 403
        assert client.get(f"/api/webhooks/{hook['id']}/").status_code == 403
        assert client.get(f"/api/webhooks/{hook['id']}/deliveries/").status_code == 403
        assert webhook(client).status_code == 403
        assert client.patch(f"/api/webhooks/{hook['id']}/", {"enabled": False}).status_code == 403
        assert client.post(f"/api/webhooks/{hook['id']}/rotate-secret/").status_code == 403
        assert client.post(f"/api/webhooks/{hook['id']}/ping/").status_code == 403
    assert WebhookEndpoint.objects.get().enabled and not WebhookDelivery.objects.exists()


def test_disabling_a_webhook_is_audited_and_enabling_it_again_clears_the_reason(admin, clock):
    hook = webhook(admin).json()
    off = admin.patch(f"/api/webhooks/{hook['id']}/", {"enabled": False})
    assert off.status_code == 200, off.content
    assert off.json()["enabled"] is False and off.json()["disabledReason"] == "disabled by dev-admin"
    assert WebhookEndpoint.objects.get().disabled_at == NOON
    (event,) = AuditEvent.objects.filter(action="webhook.disable")
    assert event.actor == "dev-admin" and event.metadata["reason"] == "disabled by dev-admin"
    assert admin.post(f"/api/webhooks/{hook['id']}/ping/").status_code == 409  # nothing goes to a disabled one
    on = admin.patch(f"/api/webhooks/{hook['id']}/", {"enabled": True, "events": ["incident.*"]})
    assert on.json()["enabled"] is True and on.json()["disabledReason"] == ""
    assert on.json()["events"] == ["incident.*"]
    changes = AuditEvent.objects.filter(action="webhook.update").latest("seq").metadata["changes"]
    assert changes == {"enabled": [False, True], "events": [["release.*", "incident.*"], ["incident.*"]]}
    bad = admin.patch(f"/api/webhooks/{hook['id']}/", {"url": "not a url"})
    assert bad.status_code == 400 and "url" in bad.json()


def test_rotating_a_webhook_secret_shows_the_new_one_and_until_when_the_old_signs(admin, clock):
    hook = webhook(admin).json()
    clock.shift(timedelta(hours=1))
    rotated = admin.post(f"/api/webhooks/{hook['id']}/rotate-secret/")
    assert rotated.status_code == 200, rotated.content
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    assert rotated.json()["previousSecretValidUntil"] == at(hours=25)
    assert admin.get(f"/api/webhooks/{hook['id']}/").json()["previousSecretValidUntil"] == at(hours=25)
    assert WebhookEndpoint.objects.get().secrets() == [new, hook["secret"]]
    clock.shift(timedelta(hours=24))
    assert WebhookEndpoint.objects.get().secrets() == [new]
    event = AuditEvent.objects.get(action="webhook.rotate")
    assert event.metadata == {"previousValidUntil": at(hours=25)} and new not in everything_audited()


def test_ping_redeliver_and_the_delivery_log(admin, clock):
    hook = webhook(admin, events=["incident.*"]).json()
    pinged = admin.post(f"/api/webhooks/{hook['id']}/ping/")
    assert pinged.status_code == 202, pinged.content
    ping = pinged.json()
    assert ping["eventType"] == "webhook.ping" and ping["state"] == "pending" and ping["id"].startswith("msg-")
    assert ping["eventSeq"] is None and ping["nextAttemptAt"] == at()
    assert [d["id"] for d in admin.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"]] == [ping["id"]]

    waiting = admin.post(f"/api/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver/")
    assert waiting.status_code == 409 and "pending" in waiting.json()["detail"]

    # The worker tried and gave up (what integrations.delivery records), a minute later.
    clock.shift(timedelta(minutes=1))
    WebhookAttempt.objects.create(
        delivery_id=ping["id"], number=1, started_at=NOON, duration_ms=12, status_code=410, response="gone"
    )
    WebhookDelivery.objects.filter(pk=ping["id"]).update(
        state="failed", attempts=1, last_status=410, finished_at=NOON, next_attempt_at=None
    )
    detail = admin.get(f"/api/webhooks/{hook['id']}/deliveries/{ping['id']}/")
    assert detail.status_code == 200
    shown = detail.json()
    assert shown["state"] == "failed" and shown["lastStatus"] == 410 and shown["attempts"] == 1
    assert shown["body"]["type"] == "webhook.ping"
    assert shown["body"]["data"]["subject"] == {"type": "WebhookEndpoint", "id": hook["id"]}
    assert shown["tries"] == [
        {"number": 1, "startedAt": at(), "durationMs": 12, "statusCode": 410, "error": "", "response": "gone"}
    ]

    again = admin.post(f"/api/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver/")
    assert again.status_code == 202, again.content
    assert again.json()["id"] == ping["id"] and again.json()["state"] == "pending"
    assert again.json()["nextAttemptAt"] == at(minutes=1) and again.json()["body"] == shown["body"]
    event = AuditEvent.objects.get(action="webhook.redeliver")
    assert event.actor == "dev-admin" and event.metadata["delivery"] == ping["id"]
    assert admin.post(f"/api/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver/").status_code == 409

    other = webhook(admin).json()
    assert admin.get(f"/api/webhooks/{other['id']}/deliveries/{ping['id']}/").status_code == 404  # not its delivery
    assert admin.get(f"/api/webhooks/{other['id']}/deliveries/").json()["results"] == []


def test_deliveries_are_listed_newest_first(admin, clock):
    hook = webhook(admin).json()
    ids = []
    for _ in range(3):
        ids.append(admin.post(f"/api/webhooks/{hook['id']}/ping/").json()["id"])
        clock.shift(timedelta(seconds=1))
    listed = admin.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"]
    assert [d["id"] for d in listed] == ids[::-1]
    assert "body" not in listed[0] and "tries" not in listed[0]  # the list is a summary


# --- query counts: a list's cost does not grow with its length ---

ADMIN = Principal(actor="dev-admin", role=Role.ADMIN, auth_method="devToken")


def integrations(n: int, service_id: str) -> str:
    with acting_as(ADMIN):
        made = [lifecycle.create_integration("pagerduty", f"PD {i}", {f"P{i}": service_id})[0] for i in range(n)]
    return made[0].pk


def received(integration_id: str, n: int) -> None:
    for i in range(ReceivedEvent.objects.count(), ReceivedEvent.objects.count() + n):
        ReceivedEvent(
            integration_id=integration_id,
            event_id=f"E{i}",
            event_type="incident.triggered",
            status_code=202,
            outcome="created",
            results=[{"externalId": f"P{i}", "outcome": "created", "incidentId": None}],
        ).save()


def endpoints(n: int) -> str:
    made = []
    for i in range(n):
        endpoint = WebhookEndpoint(url=f"{HOOK}/{i}", events=["incident.*"], created_by="dev-admin")
        endpoint.secret_sealed = sealed.seal(f"whsec_{i}")
        endpoint.save()
        made.append(endpoint)
    return made[0].pk


def deliveries(endpoint_id: str, n: int, tries: int = 2) -> str:
    made = []
    for i in range(n):
        delivery = WebhookDelivery(endpoint_id=endpoint_id, event_type="incident.create", body=f'{{"n": {i}}}')
        delivery.save()
        for number in range(1, tries + 1):
            WebhookAttempt.objects.create(delivery=delivery, number=number, started_at=NOON, duration_ms=5)
        made.append(delivery)
    return made[0].pk


# Pinned: each list (and a delivery with its tries) costs this many queries whatever its length.
PINNED = {"integrations": 1, "integration log": 2, "webhooks": 1, "webhook log": 2, "delivery": 3}


def test_lists_cost_the_same_few_queries_at_any_length(admin, checkout, clock, django_assert_max_num_queries):
    def cost(name: str, url: str) -> int:
        with django_assert_max_num_queries(PINNED[name]) as captured:
            answer = admin.get(url)
            assert answer.status_code == 200, answer.content
        return len(captured)

    def measure() -> dict:
        return {
            "integrations": cost("integrations", "/api/integrations/"),
            "integration log": cost("integration log", f"/api/integrations/{integration_id}/deliveries/"),
            "webhooks": cost("webhooks", "/api/webhooks/"),
            "webhook log": cost("webhook log", f"/api/webhooks/{endpoint_id}/deliveries/"),
            "delivery": cost("delivery", f"/api/webhooks/{endpoint_id}/deliveries/{delivery_id}/"),
        }

    integration_id = integrations(1, checkout.pk)
    received(integration_id, 1)
    endpoint_id = endpoints(1)
    delivery_id = deliveries(endpoint_id, 1, tries=1)
    small = measure()

    integrations(9, checkout.pk)
    received(integration_id, 19)
    endpoints(9)
    for number in range(2, 8):
        WebhookAttempt.objects.create(delivery_id=delivery_id, number=number, started_at=NOON, duration_ms=5)
    deliveries(endpoint_id, 19)
    large = measure()
    assert large == small, (small, large)
    assert len(admin.get("/api/integrations/").json()["results"]) == 10
    assert len(admin.get(f"/api/integrations/{integration_id}/deliveries/").json()["results"]) == 20
    assert len(admin.get("/api/webhooks/").json()["results"]) == 10
    assert len(admin.get(f"/api/webhooks/{endpoint_id}/deliveries/").json()["results"]) == 20
    assert len(admin.get(f"/api/webhooks/{endpoint_id}/deliveries/{delivery_id}/").json()["tries"]) == 7
