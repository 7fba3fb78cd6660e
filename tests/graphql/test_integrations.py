"""Integrations and webhooks over GraphQL (integrations/schema.py): admins only, reads included, as over REST;
REST's rules and words for every write; a secret only in the payload that made it; lists that cost the same at
any size. Nothing is sent: the endpoints name 127.0.0.1:9, and no worker runs."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from incidents.models import Incident
from integrations.models import Integration, ReceivedEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import Api
from tests.graphql.test_mutations import stored

pytestmark = pytest.mark.django_db

HOOK = "http://127.0.0.1:9/hook"
ERRORS = "errors { field code message }"
INTEGRATION = "id kind name serviceMap url createdBy createdAt previousSecretValidUntil"
WEBHOOK = "id url events format description enabled disabledReason createdBy createdAt previousSecretValidUntil"
DELIVERY = "id webhookId eventType eventSeq state attempts createdAt nextAttemptAt lastStatus lastError finishedAt"
TRIES = "tries { number startedAt durationMs statusCode error response }"

INTEGRATION_CREATE = f"""mutation($input: IntegrationCreateInput!) {{
  integrationCreate(input: $input) {{ integration {{ {INTEGRATION} }} secret {ERRORS} }}
}}"""
INTEGRATION_UPDATE = f"""mutation($id: ID!, $input: IntegrationUpdateInput!) {{
  integrationUpdate(id: $id, input: $input) {{ integration {{ {INTEGRATION} }} {ERRORS} }}
}}"""
INTEGRATION_ROTATE = f"""mutation($id: ID!, $secret: String) {{
  integrationRotateSecret(id: $id, secret: $secret) {{ integration {{ {INTEGRATION} }} secret {ERRORS} }}
}}"""
WEBHOOK_CREATE = f"""mutation($input: WebhookCreateInput!) {{
  webhookCreate(input: $input) {{ webhook {{ {WEBHOOK} }} secret {ERRORS} }}
}}"""
WEBHOOK_UPDATE = f"""mutation($id: ID!, $input: WebhookUpdateInput!) {{
  webhookUpdate(id: $id, input: $input) {{ webhook {{ {WEBHOOK} }} {ERRORS} }}
}}"""
WEBHOOK_ROTATE = f"""mutation($id: ID!) {{
  webhookRotateSecret(id: $id) {{ webhook {{ {WEBHOOK} }} secret {ERRORS} }}
}}"""
WEBHOOK_PING = f"mutation($id: ID!) {{ webhookPing(id: $id) {{ delivery {{ {DELIVERY} body }} {ERRORS} }} }}"
WEBHOOK_REDELIVER = f"""mutation($id: ID!) {{
  webhookRedeliver(deliveryId: $id) {{ delivery {{ {DELIVERY} {TRIES} }} {ERRORS} }}
}}"""

INTEGRATIONS = f"""query($first: Int, $after: String) {{
  integrations(first: $first, after: $after) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {INTEGRATION} }} }}
  }}
}}"""
ONE_INTEGRATION = f"query($id: ID!) {{ integration(id: $id) {{ {INTEGRATION} }} }}"
RECEIVED = """query($id: ID!, $first: Int, $after: String) {
  integrationDeliveries(integrationId: $id, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id integrationId receivedAt eventId eventType externalId occurredAt statusCode outcome reason results
      integration { id name }
    } }
  }
}"""
WEBHOOKS = f"""query($first: Int, $after: String) {{
  webhooks(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {WEBHOOK} }} }} }}
}}"""
ONE_WEBHOOK = f"query($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK} }} }}"
DELIVERIES = f"""query($id: ID!, $first: Int, $after: String) {{
  webhookDeliveries(webhookId: $id, first: $first, after: $after) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {DELIVERY} body webhook {{ id url }} {TRIES} }} }}
  }}
}}"""
ONE_DELIVERY = f"query($id: ID!) {{ webhookDelivery(id: $id) {{ {DELIVERY} body webhook {{ id }} {TRIES} }} }}"

MAP = {"PXYZ123": "svc-demo", "checkout_api": "svc-demo"}  # keys as the source spells them, not camel-cased


@pytest.fixture(autouse=True)
def private_targets_allowed(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True  # nothing is sent: no worker runs


def created_integration(admin, **input) -> tuple[dict, str]:
    payload = admin(INTEGRATION_CREATE, input={"kind": "generic", "name": "alerts", **input})["integrationCreate"]
    assert payload["errors"] == [], payload
    return payload["integration"], payload["secret"]


def created_webhook(admin, **input) -> tuple[dict, str]:
    payload = admin(WEBHOOK_CREATE, input={"url": HOOK, "events": ["release.*"], **input})["webhookCreate"]
    assert payload["errors"] == [], payload
    return payload["webhook"], payload["secret"]


def rest_errors(response) -> list[dict]:
    """REST's 400/404/409 body as GraphQL's `errors` would carry it."""
    code = {400: "INVALID", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT"}[response.status_code]
    body = response.json()
    if "detail" in body:
        return [{"field": None, "code": code, "message": body["detail"]}]
    return [
        {"field": field, "code": code, "message": message} for field, messages in body.items() for message in messages
    ]


# --- incidents in ---


def test_an_integration_is_created_read_updated_and_rotated(admin, demo):
    integration, secret = created_integration(admin, kind="pagerduty", serviceMap=MAP, secret="pd-" + "s" * 30)
    assert secret == "pd-" + "s" * 30  # PagerDuty's own
    assert integration["kind"] == "pagerduty" and integration["serviceMap"] == MAP
    assert integration["url"] == f"http://testserver/api/integrations/{integration['id']}/events/"
    assert integration["createdBy"] == "dev-admin" and integration["previousSecretValidUntil"] is None

    other, made = created_integration(admin, name="alertmanager", kind="alertmanager")
    assert made and made != secret and other["serviceMap"] == {}
    listed = admin(INTEGRATIONS)["integrations"]
    assert [edge["node"]["name"] for edge in listed["edges"]] == ["alertmanager", "alerts"]  # by name
    assert listed["edges"][1]["node"] == integration
    page = admin(INTEGRATIONS, first=1)["integrations"]
    assert page["pageInfo"]["hasNextPage"] and [e["node"]["id"] for e in page["edges"]] == [other["id"]]
    after = admin(INTEGRATIONS, first=1, after=page["pageInfo"]["endCursor"])["integrations"]
    assert [e["node"]["id"] for e in after["edges"]] == [integration["id"]] and not after["pageInfo"]["hasNextPage"]
    assert admin(ONE_INTEGRATION, id=integration["id"])["integration"] == integration
    assert admin(ONE_INTEGRATION, id="int-nope")["integration"] is None

    changed = admin(
        INTEGRATION_UPDATE, id=integration["id"], input={"name": "paging", "serviceMap": {"P1": "svc-demo"}}
    )
    assert changed["integrationUpdate"]["errors"] == []
    assert (
        changed["integrationUpdate"]["integration"] | {"name": "paging", "serviceMap": {"P1": "svc-demo"}}
        == (changed["integrationUpdate"]["integration"])
    )
    assert Integration.objects.get(pk=integration["id"]).service_map == {"P1": "svc-demo"}

    rotated = admin(INTEGRATION_ROTATE, id=other["id"])["integrationRotateSecret"]
    assert rotated["errors"] == [] and rotated["secret"] not in ("", None, made)
    assert rotated["integration"]["previousSecretValidUntil"]
    assert Integration.objects.get(pk=other["id"]).secrets() == [rotated["secret"], made]  # both, for 24 hours
    pd = admin(INTEGRATION_ROTATE, id=integration["id"], secret="pd-" + "t" * 30)["integrationRotateSecret"]
    assert pd["errors"] == [] and pd["secret"] == "pd-" + "t" * 30

    trail = list(AuditEvent.objects.filter(action__startswith="integration.").values_list("action", flat=True))
    assert trail == ["integration.create", "integration.create", "integration.update"] + ["integration.rotate"] * 2


def test_an_integrations_delivery_log_newest_first(admin, demo):
    integration, _ = created_integration(admin, serviceMap=MAP)
    now = timezone.now()
    for n, outcome in enumerate(("created", "rejected", "duplicate")):
        ReceivedEvent(
            integration_id=integration["id"],
            received_at=now + timedelta(seconds=n),
            event_id=f"e{n}",
            event_type="incident.triggered",
            external_id="Q1",
            occurred_at=now,
            status_code=422 if outcome == "rejected" else 202,
            outcome=outcome,
            reason="unknown service 'x'." if outcome == "rejected" else "",
            results=[{"externalId": "Q1", "outcome": outcome}],
        ).save()
    log = admin(RECEIVED, id=integration["id"])["integrationDeliveries"]
    nodes = [edge["node"] for edge in log["edges"]]
    assert [n["outcome"] for n in nodes] == ["duplicate", "rejected", "created"]
    assert nodes[1] | {"statusCode": 422, "reason": "unknown service 'x'.", "eventId": "e1"} == nodes[1]
    assert nodes[2]["results"] == [{"externalId": "Q1", "outcome": "created"}]
    assert {n["integrationId"] for n in nodes} == {integration["id"]} == {n["integration"]["id"] for n in nodes}
    first = admin(RECEIVED, id=integration["id"], first=2)["integrationDeliveries"]
    rest = admin(RECEIVED, id=integration["id"], after=first["pageInfo"]["endCursor"])["integrationDeliveries"]
    assert [e["node"]["id"] for e in first["edges"] + rest["edges"]] == [n["id"] for n in nodes]
    assert admin(RECEIVED, id="int-nope")["integrationDeliveries"] is None


def test_an_incident_names_its_source(admin, viewer, demo):
    integration, _ = created_integration(admin)
    Incident(
        service_id="svc-demo",
        title="from the source",
        severity="high",
        link="https://pd.example.com/incidents/Q1",
        source="generic",
        external_id="Q1",
        integration_id=integration["id"],
    ).save()
    document = "{ incidents { edges { node { title source externalId integrationId } } } }"
    nodes = {edge["node"]["title"]: edge["node"] for edge in viewer(document)["incidents"]["edges"]}
    assert nodes["from the source"] == {
        "title": "from the source",
        "source": "generic",
        "externalId": "Q1",
        "integrationId": integration["id"],
    }
    typed = [node for title, node in nodes.items() if title != "from the source"]
    assert typed and all(n["source"] == "manual" and n["externalId"] is n["integrationId"] is None for n in typed)


# --- events out ---


def test_a_webhook_is_created_read_updated_rotated_and_pinged(admin, demo):
    webhook, secret = created_webhook(admin, events=["release.*", "incident.*"], description="chat")
    assert secret.startswith("whsec_")
    assert webhook | {"url": HOOK, "events": ["release.*", "incident.*"], "format": "standard", "enabled": True} == (
        webhook
    )
    assert webhook["description"] == "chat" and webhook["disabledReason"] == "" and webhook["createdBy"] == "dev-admin"
    slack, _ = created_webhook(admin, url="http://127.0.0.1:9/slack", format="slack")
    assert [e["node"]["id"] for e in admin(WEBHOOKS)["webhooks"]["edges"]] == [webhook["id"], slack["id"]]
    assert admin(ONE_WEBHOOK, id=webhook["id"])["webhook"] == webhook
    assert admin(ONE_WEBHOOK, id="whk-nope")["webhook"] is None

    off = admin(WEBHOOK_UPDATE, id=webhook["id"], input={"enabled": False, "events": ["*"]})["webhookUpdate"]
    assert off["errors"] == [] and off["webhook"]["enabled"] is False and off["webhook"]["events"] == ["*"]
    assert off["webhook"]["disabledReason"] == "disabled by dev-admin"
    refused = admin(WEBHOOK_PING, id=webhook["id"])["webhookPing"]
    assert refused == {
        "delivery": None,
        "errors": [
            {"field": None, "code": "CONFLICT", "message": f"webhook {webhook['id']} is disabled; enable it first."}
        ],
    }
    on = admin(WEBHOOK_UPDATE, id=webhook["id"], input={"enabled": True})["webhookUpdate"]["webhook"]
    assert on["enabled"] is True and on["disabledReason"] == ""

    rotated = admin(WEBHOOK_ROTATE, id=webhook["id"])["webhookRotateSecret"]
    assert rotated["errors"] == [] and rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert rotated["webhook"]["previousSecretValidUntil"]

    pinged = admin(WEBHOOK_PING, id=webhook["id"])["webhookPing"]
    delivery = pinged["delivery"]
    assert pinged["errors"] == [] and delivery["eventType"] == "webhook.ping" and delivery["state"] == "pending"
    assert delivery["webhookId"] == webhook["id"] and delivery["eventSeq"] is None
    assert delivery["body"]["type"] == "webhook.ping"
    assert delivery["body"]["data"]["subject"] == {"type": "WebhookEndpoint", "id": webhook["id"]}


def test_a_delivery_its_tries_and_redelivery(admin, demo):
    webhook, _ = created_webhook(admin)
    delivery = admin(WEBHOOK_PING, id=webhook["id"])["webhookPing"]["delivery"]
    # Still waiting: redelivering it is a conflict, in REST's words.
    waiting = admin(WEBHOOK_REDELIVER, id=delivery["id"])["webhookRedeliver"]
    expected = rest_errors(Api("admin").post(f"/api/webhooks/{webhook['id']}/deliveries/{delivery['id']}/redeliver/"))
    assert waiting == {"delivery": None, "errors": expected}
    assert expected[0]["code"] == "CONFLICT" and "is pending" in expected[0]["message"]

    # The worker gave up after two tries.
    started = timezone.now()
    for number, status in ((1, 500), (2, None)):
        WebhookAttempt(
            delivery_id=delivery["id"],
            number=number,
            started_at=started + timedelta(seconds=number),
            duration_ms=12,
            status_code=status,
            error="" if status else "timed out",
            response="oops" if status else "",
        ).save()
    WebhookDelivery.objects.filter(pk=delivery["id"]).update(
        state="failed", attempts=2, last_error="timed out", finished_at=started, next_attempt_at=None
    )
    read = admin(ONE_DELIVERY, id=delivery["id"])["webhookDelivery"]
    assert read["state"] == "failed" and read["attempts"] == 2 and read["webhook"] == {"id": webhook["id"]}
    assert read["tries"] == [
        {"number": 1, "startedAt": read["tries"][0]["startedAt"], "durationMs": 12, "statusCode": 500, "error": ""}
        | {"response": "oops"},
        {"number": 2, "startedAt": read["tries"][1]["startedAt"], "durationMs": 12, "statusCode": None}
        | {"error": "timed out", "response": ""},
    ]
    assert read["body"] == json.loads(WebhookDelivery.objects.get(pk=delivery["id"]).body)
    listed = admin(DELIVERIES, id=webhook["id"])["webhookDeliveries"]["edges"]
    assert [e["node"]["id"] for e in listed] == [delivery["id"]] and listed[0]["node"]["tries"] == read["tries"]
    assert admin(DELIVERIES, id="whk-nope")["webhookDeliveries"] is None
    assert admin(ONE_DELIVERY, id="msg-nope")["webhookDelivery"] is None

    again = admin(WEBHOOK_REDELIVER, id=delivery["id"])["webhookRedeliver"]
    assert (
        again["errors"] == [] and again["delivery"]["state"] == "pending" and again["delivery"]["id"] == delivery["id"]
    )
    assert len(again["delivery"]["tries"]) == 2
    assert AuditEvent.objects.filter(action="webhook.redeliver", subject_id=webhook["id"]).count() == 1


# --- admins only ---

READS = {
    "integrations": (INTEGRATIONS, {}, "integration.read"),
    "integration": (ONE_INTEGRATION, {"id": "int-x"}, "integration.read"),
    "integrationDeliveries": (RECEIVED, {"id": "int-x"}, "integration.read"),
    "webhooks": (WEBHOOKS, {}, "webhook.read"),
    "webhook": (ONE_WEBHOOK, {"id": "whk-x"}, "webhook.read"),
    "webhookDeliveries": (DELIVERIES, {"id": "whk-x"}, "webhook.read"),
    "webhookDelivery": (ONE_DELIVERY, {"id": "msg-x"}, "webhook.read"),
}


@pytest.fixture
def existing(admin, demo):
    """An integration and a webhook with a finished delivery, made by the admin: ids for every read and write."""
    integration, _ = created_integration(admin, serviceMap=MAP)
    webhook, _ = created_webhook(admin)
    delivery = admin(WEBHOOK_PING, id=webhook["id"])["webhookPing"]["delivery"]
    WebhookDelivery.objects.filter(pk=delivery["id"]).update(state="succeeded", finished_at=timezone.now())
    return {"int-x": integration["id"], "whk-x": webhook["id"], "msg-x": delivery["id"]}


@pytest.mark.parametrize("role", ["viewer", "deployer"])
@pytest.mark.parametrize("field", list(READS))
def test_a_read_below_admin_is_refused_as_rest_refuses_it(graphql, existing, field, role):
    document, variables, action = READS[field]
    variables = {name: existing.get(value, value) for name, value in variables.items()}
    body = graphql(role).post(document, **variables).json()
    assert body["data"] == {field: None}
    message = f"{action} needs the admin role; dev-{role} has {role}."
    assert [(e["message"], e["extensions"], e["path"]) for e in body["errors"]] == [
        (message, {"code": "FORBIDDEN"}, [field])
    ]
    url = "/api/integrations/" if action.startswith("integration") else "/api/webhooks/"
    assert Api(role).get(url).json() == {"detail": message}
    # The admin reads it.
    assert graphql("admin")(document, **variables)[field] is not None


def test_a_refused_read_leaves_the_rest_of_the_document(deployer, existing):
    body = deployer.post("{ me { role } webhooks { edges { node { url } } } }").json()
    assert body["data"] == {"me": {"role": "deployer"}, "webhooks": None}
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN"}


WRITES = {
    "integrationCreate": (INTEGRATION_CREATE, {"input": {"kind": "generic", "name": "x"}}, "integration.create"),
    "integrationUpdate": (INTEGRATION_UPDATE, {"id": "int-x", "input": {"name": "y"}}, "integration.update"),
    "integrationRotateSecret": (INTEGRATION_ROTATE, {"id": "int-x"}, "integration.rotate"),
    "webhookCreate": (WEBHOOK_CREATE, {"input": {"url": HOOK, "events": ["*"]}}, "webhook.create"),
    "webhookUpdate": (WEBHOOK_UPDATE, {"id": "whk-x", "input": {"enabled": False}}, "webhook.update"),
    "webhookRotateSecret": (WEBHOOK_ROTATE, {"id": "whk-x"}, "webhook.rotate"),
    "webhookPing": (WEBHOOK_PING, {"id": "whk-x"}, "webhook.ping"),
    "webhookRedeliver": (WEBHOOK_REDELIVER, {"id": "msg-x"}, "webhook.redeliver"),
}


def written() -> dict:
    rows = {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in (Integration, ReceivedEvent, WebhookEndpoint, WebhookDelivery, WebhookAttempt)
    }
    return rows | stored()


def test_every_mutation_here_is_in_the_matrix(admin):
    fields = admin("{ __schema { mutationType { fields { name } } } }")["__schema"]["mutationType"]["fields"]
    assert sorted(f["name"] for f in fields if f["name"].startswith(("integration", "webhook"))) == sorted(WRITES)


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin"])
@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_is_for_admins_only(graphql, existing, name, role):
    document, variables, action = WRITES[name]
    variables = {
        key: existing.get(value, value) if isinstance(value, str) else value for key, value in variables.items()
    }
    before = written()
    payload = graphql(role)(document, **variables)[name]
    if role == "admin":
        assert payload["errors"] == [], payload
        assert written() != before
        return
    assert payload["errors"] == [
        {"field": None, "code": "FORBIDDEN", "message": f"{action} needs the admin role; dev-{role} has {role}."}
    ]
    assert all(value is None for key, value in payload.items() if key != "errors")
    assert written() == before


# --- REST's rules, REST's words ---

# (mutation, variables, REST's request): the same bad input both ways.
BAD = [
    (
        "integrationCreate",
        {"input": {"kind": "generic", "name": "x", "serviceMap": {"checkout_api": "svc-nope"}}},
        ("post", "/api/integrations/", {"kind": "generic", "name": "x", "serviceMap": {"checkout_api": "svc-nope"}}),
    ),
    (
        "integrationCreate",
        {"input": {"kind": "generic", "name": "x", "secret": "s" * 20}},
        ("post", "/api/integrations/", {"kind": "generic", "name": "x", "secret": "s" * 20}),
    ),
    (
        "integrationCreate",
        {"input": {"kind": "pagerduty", "name": "x", "secret": "short"}},
        ("post", "/api/integrations/", {"kind": "pagerduty", "name": "x", "secret": "short"}),
    ),
    (
        "integrationCreate",
        {"input": {"kind": "generic", "name": " ", "serviceMap": {"a": 1}}},
        ("post", "/api/integrations/", {"kind": "generic", "name": " ", "serviceMap": {"a": 1}}),
    ),
    (
        "integrationUpdate",
        {"id": "int-x", "input": {"serviceMap": {"a": "svc-nope"}}},
        ("patch", "/api/integrations/int-x/", {"serviceMap": {"a": "svc-nope"}}),
    ),
    ("integrationUpdate", {"id": "int-nope", "input": {"name": "y"}}, ("patch", "/api/integrations/int-nope/", {})),
    (
        "integrationRotateSecret",
        {"id": "int-x", "secret": "s" * 20},
        ("post", "/api/integrations/int-x/rotate-secret/", {"secret": "s" * 20}),
    ),
    ("integrationRotateSecret", {"id": "int-nope"}, ("post", "/api/integrations/int-nope/rotate-secret/", {})),
    (
        "webhookCreate",
        {"input": {"url": "ftp://example.com/x", "events": ["release.*", "nothing.*", "release.*"]}},
        ("post", "/api/webhooks/", {"url": "ftp://example.com/x", "events": ["release.*", "nothing.*", "release.*"]}),
    ),
    (
        "webhookCreate",
        {"input": {"url": "http://user:pw@example.com/x", "events": []}},
        ("post", "/api/webhooks/", {"url": "http://user:pw@example.com/x", "events": []}),
    ),
    (
        "webhookUpdate",
        {"id": "whk-x", "input": {"events": ["release"], "description": "d" * 201}},
        ("patch", "/api/webhooks/whk-x/", {"events": ["release"], "description": "d" * 201}),
    ),
    ("webhookRotateSecret", {"id": "whk-nope"}, ("post", "/api/webhooks/whk-nope/rotate-secret/", {})),
    ("webhookPing", {"id": "whk-nope"}, ("post", "/api/webhooks/whk-nope/ping/", {})),
]


@pytest.mark.parametrize(("name", "variables", "request_"), BAD, ids=[f"{b[0]}-{n}" for n, b in enumerate(BAD)])
def test_a_broken_rule_is_named_as_rest_names_it(admin, existing, name, variables, request_):
    method, url, body = request_
    for placeholder, real in existing.items():
        url = url.replace(placeholder, real)
    variables = {
        key: existing.get(value, value) if isinstance(value, str) else value for key, value in variables.items()
    }
    before = written()
    payload = admin(WRITES[name][0], **variables)[name]
    assert written() == before
    response = getattr(Api("admin"), method)(url, body)
    assert response.status_code in (400, 404), response.json()
    assert payload["errors"] == rest_errors(response)
    assert all(value is None for key, value in payload.items() if key != "errors")


def test_a_field_is_named_in_camel_case(admin, demo):
    payload = admin(INTEGRATION_CREATE, input={"kind": "generic", "name": "x", "serviceMap": {"a": "svc-nope"}})
    assert payload["integrationCreate"]["errors"] == [
        {"field": "serviceMap", "code": "INVALID", "message": "unknown service 'svc-nope'."}
    ]


def test_a_private_target_is_refused(admin, demo, settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False
    payload = admin(WEBHOOK_CREATE, input={"url": HOOK, "events": ["*"]})["webhookCreate"]
    assert payload["webhook"] is None and [e["field"] for e in payload["errors"]] == ["url"]
    assert payload["errors"] == rest_errors(Api("admin").post("/api/webhooks/", {"url": HOOK, "events": ["*"]}))


# --- secrets: shown once ---


def test_a_secret_is_only_in_the_payload_that_made_it(admin, demo):
    integration, secret = created_integration(admin)
    webhook, whsec = created_webhook(admin)
    rotated = admin(WEBHOOK_ROTATE, id=webhook["id"])["webhookRotateSecret"]["secret"]
    reads = [
        admin(INTEGRATIONS),
        admin(ONE_INTEGRATION, id=integration["id"]),
        admin(WEBHOOKS),
        admin(ONE_WEBHOOK, id=webhook["id"]),
        admin(INTEGRATION_UPDATE, id=integration["id"], input={"name": "renamed"}),
        admin(WEBHOOK_UPDATE, id=webhook["id"], input={"description": "renamed"}),
        admin(WEBHOOK_PING, id=webhook["id"]),
    ]
    for answer in reads:
        text = json.dumps(answer)
        assert secret not in text and whsec not in text and rotated not in text
    trail = json.dumps(list(AuditEvent.objects.values_list("metadata", flat=True)))
    assert secret not in trail and whsec not in trail and rotated not in trail
    # No type but the create's and rotation's payloads has a secret to ask for.
    for type_name in ("Integration", "Webhook"):
        refused = admin.post(f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}').json()
        assert "secret" not in {f["name"] for f in refused["data"]["__type"]["fields"]}
    asked = admin.post("query($id: ID!) { integration(id: $id) { secret } }", id=integration["id"]).json()
    assert asked["errors"][0]["message"] == "Cannot query field 'secret' on type 'Integration'."


# --- query counts, pinned at two sizes ---

SMALL, LARGE = 3, 30
LIST_DOCUMENTS = {
    # the page
    "integrations": (INTEGRATIONS, lambda ids: {"first": 50}),
    # the integration (it exists); the page; the integrations of its events (one query)
    "integrationDeliveries": (RECEIVED, lambda ids: {"id": ids["integration"], "first": 50}),
    # the page
    "webhooks": (WEBHOOKS, lambda ids: {"first": 50}),
    # the webhook (it exists); the page; their webhooks; their tries
    "webhookDeliveries": (DELIVERIES, lambda ids: {"id": ids["webhook"], "first": 50}),
    # the delivery; its webhook; its tries
    "webhookDelivery": (ONE_DELIVERY, lambda ids: {"id": ids["delivery"]}),
}
QUERIES = {"integrations": 1, "integrationDeliveries": 3, "webhooks": 1, "webhookDeliveries": 4, "webhookDelivery": 3}


def grow(start: int, size: int) -> dict:
    """Up to `size` integrations, webhooks, received events (of the first integration) and deliveries (of the
    first webhook, each with two tries), in bulk, the later ones newer."""
    now = timezone.now()
    new = range(start, size)
    Integration.objects.bulk_create(
        Integration(id=f"int-{n:03d}", kind="generic", name=f"i{n:03d}", created_by="t", secret_sealed="x") for n in new
    )
    WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(
            id=f"whk-{n:03d}",
            url=HOOK,
            events=["*"],
            created_by="t",
            secret_sealed="x",
            created_at=now + timedelta(seconds=n),
        )
        for n in new
    )
    ReceivedEvent.objects.bulk_create(
        ReceivedEvent(
            id=f"evt-{n:03d}",
            integration_id="int-000",
            received_at=now + timedelta(seconds=n),
            status_code=202,
            outcome="created",
        )
        for n in new
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            id=f"msg-{n:03d}",
            endpoint_id="whk-000",
            event_type="release.create",
            body='{"type": "release.create"}',
            created_at=now + timedelta(seconds=n),
            state="failed",
            attempts=2,
        )
        for n in new
    )
    WebhookAttempt.objects.bulk_create(
        WebhookAttempt(delivery_id=f"msg-{n:03d}", number=k, started_at=now, duration_ms=5, status_code=500)
        for n in new
        for k in (1, 2)
    )
    return {"integration": "int-000", "webhook": "whk-000", "delivery": f"msg-{size - 1:03d}"}


@pytest.mark.parametrize("name", list(LIST_DOCUMENTS))
def test_a_list_costs_the_same_at_any_size(admin, name):
    document, variables = LIST_DOCUMENTS[name]
    counts = []
    for start, size in ((0, SMALL), (SMALL, LARGE)):
        ids = grow(start, size)
        with CaptureQueriesContext(connection) as queries:
            answer = admin(document, **variables(ids))[name]
        counts.append(len(queries))
        assert len(answer["edges"]) == size if "edges" in answer else len(answer["tries"]) == 2
    assert counts == [QUERIES[name]] * 2
