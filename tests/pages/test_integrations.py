"""/integrations/ and /webhooks/<id>/: integrations (incidents in) and webhook endpoints (events out), admins only;
made through forms (every broken rule said at once, the secret shown once), changed after confirmations (a refusal
is a 409 message), their delivery logs in keyset pages with pinned query counts; the admin; and in a real browser."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from controlplane import sealed
from controlplane.identity.context import acting_as
from integrations import lifecycle
from integrations.models import (
    Integration,
    ReceivedEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.conftest import sign_in
from tests.pages.conftest import CHROMIUM

pytestmark = pytest.mark.django_db

SHOWN_ONCE = "it will not be shown again"


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = True  # nothing is sent here; the endpoints name 127.0.0.1


def user(role: str, csrf: bool = False) -> Client:
    client = sign_in(Client(), role)
    client.handler.enforce_csrf_checks = csrf
    return client


def main(response) -> str:
    return response.content.decode().split("<main", 1)[1]


def made_for_pages() -> dict:
    """An integration with a received event, a webhook endpoint with a failed delivery of two tries and a pending
    one, under fixed ids (the browser tests', which may not use the ORM once the browser runs)."""
    now = timezone.now()
    integration = Integration(
        id="int-pages", kind="alertmanager", name="Alertmanager: prod", service_map={"checkout": "svc-demo"}
    )
    integration.secret_sealed, integration.created_by = sealed.seal("whsec_c2VjcmV0"), "dev-admin"
    integration.save()
    ReceivedEvent(
        id="evt-pages",
        integration=integration,
        event_type="alertmanager.firing",
        external_id="fp-1",
        status_code=202,
        outcome="created",
        results=[{"externalId": "fp-1", "outcome": "created", "incidentId": "inc-789"}],
    ).save()
    endpoint = WebhookEndpoint(
        id="whk-pages",
        url="https://hooks.example.com/services/T000/B000/XXXX",
        events=["release.*", "incident.*"],
        description="The team's channel",
        created_by="dev-admin",
    )
    endpoint.secret_sealed = sealed.seal("whsec_c2VjcmV0")
    endpoint.save()
    failed = WebhookDelivery(
        id="msg-pages",
        endpoint=endpoint,
        event_seq=1,
        event_type="release.activate",
        body='{"type": "release.activate", "data": {"id": "rel-123"}}',
        state="failed",
        attempts=2,
        last_status=404,
        last_error="404: a permanent answer",
        finished_at=now,
    )
    failed.save()
    for number, status, error in ((1, 503, ""), (2, 404, "a permanent answer")):
        WebhookAttempt(
            delivery=failed,
            number=number,
            started_at=now - timedelta(minutes=3 - number),
            duration_ms=120 * number,
            status_code=status,
            error=error,
            response='{"error": "no such channel"}',
        ).save()
    WebhookDelivery(
        id="msg-pending",
        endpoint=endpoint,
        event_type="incident.create",
        body="{}",
        next_attempt_at=now + timedelta(seconds=30),
    ).save()
    return {"integration": integration, "endpoint": endpoint, "failed": failed}


@pytest.fixture
def made(demo):
    return made_for_pages()


# --- who may ---


@pytest.mark.parametrize("path", ["/integrations/", "/integrations/int-pages/", "/webhooks/whk-pages/"])
def test_signed_out_is_sent_to_sign_in(path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_the_address_of_a_forms_answer_leads_back_to_the_form(demo):
    admin = user("admin")
    assert admin.get("/integrations/new/")["Location"] == "/integrations/#new-integration"
    assert admin.get("/webhooks/new/")["Location"] == "/integrations/#new-webhook"


def test_a_deployer_is_refused_everywhere_and_shown_no_link(made):
    deployer = user("deployer")
    assert 'href="/integrations/"' not in deployer.get("/incidents/").content.decode()
    assert 'href="/integrations/"' in user("admin").get("/incidents/").content.decode()
    for path in (
        "/integrations/",
        "/integrations/int-pages/",
        "/integrations/int-pages/rotate/",
        "/webhooks/whk-pages/",
        "/webhooks/whk-pages/disable/",
        "/webhooks/whk-pages/rotate/",
        "/webhooks/whk-pages/ping/",
        "/webhooks/whk-pages/deliveries/msg-pages/",
        "/webhooks/whk-pages/deliveries/msg-pages/redeliver/",
    ):
        response = deployer.get(path)
        assert response.status_code == 403 and "needs the admin role" in response.content.decode(), path
        assert "whsec_" not in response.content.decode() and "hooks.example.com" not in response.content.decode()
    posts = {
        "/integrations/new/": {"kind": "generic", "name": "x"},
        "/integrations/int-pages/edit/": {"name": "renamed"},
        "/integrations/int-pages/rotate/": {},
        "/webhooks/new/": {"url": "http://127.0.0.1:9/x", "events": "*"},
        "/webhooks/whk-pages/disable/": {},
        "/webhooks/whk-pages/rotate/": {},
        "/webhooks/whk-pages/ping/": {},
        "/webhooks/whk-pages/deliveries/msg-pages/redeliver/": {},
    }
    for path, form in posts.items():
        assert deployer.post(path, form).status_code == 403, path
    assert Integration.objects.count() == WebhookEndpoint.objects.count() == 1
    assert Integration.objects.get().name == "Alertmanager: prod" and WebhookEndpoint.objects.get().enabled
    assert WebhookDelivery.objects.get(pk="msg-pages").state == "failed"
    assert not AuditEvent.objects.filter(
        Q(action__startswith="integration.") | Q(action__startswith="webhook.")
    ).exists()


# --- the list and its forms ---


def test_the_list_shows_both_directions(made):
    page = main(user("admin").get("/integrations/"))
    row = re.search(r'<tr id="int-pages">.*?</tr>', page, re.S).group(0)
    assert "Alertmanager: prod" in row and "Prometheus Alertmanager" in row
    assert "http://testserver/api/integrations/int-pages/events/" in row and "1 event" in row
    row = re.search(r'<tr id="whk-pages">.*?</tr>', page, re.S).group(0)
    assert "hooks.example.com" in row and "<code>release.*</code>, <code>incident.*</code>" in row
    assert "The team&#x27;s channel" in row
    assert "/services/T000" not in page  # the host only: the rest of a Slack URL is a credential
    assert '<span class="badge enabled">enabled</span>' in row and '<span class="badge pending">pending</span>' in row


def test_creating_an_integration_shows_its_secret_once(demo):
    admin = user("admin")
    form = {"kind": "alertmanager", "name": "Alertmanager: prod", "serviceMap": "checkout = svc-demo\n\n"}
    answer = admin.post("/integrations/new/", form)
    integration = Integration.objects.get()
    secret = answer.context["issued"]
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    assert secret.startswith("whsec_") and integration.secrets() == [secret]
    page = answer.content.decode()
    assert secret in page and SHOWN_ONCE in page
    assert f"http://testserver/api/integrations/{integration.pk}/events/" in page
    assert "http_config:" in page and "type: Bearer" in page  # how to point Alertmanager at it
    assert integration.service_map == {"checkout": "svc-demo"} and integration.created_by == "dev-admin"
    for path in ("/integrations/", f"/integrations/{integration.pk}/"):
        again = admin.get(path).content.decode()
        assert secret not in again and SHOWN_ONCE not in again and "Alertmanager: prod" in again


def test_a_pagerduty_integration_takes_pagerdutys_secret(demo):
    admin = user("admin")
    answer = admin.post("/integrations/new/", {"kind": "pagerduty", "name": "PD", "secret": "pd-signing-secret-1234"})
    integration = Integration.objects.get()
    assert answer.context["issued"] == "pd-signing-secret-1234" == integration.secrets()[0]
    page = answer.content.decode()
    assert "Generic Webhooks (v3)" in page and "incident.triggered" in page and "incident.resolved" in page


def test_creating_a_webhook_shows_its_secret_once(demo):
    admin = user("admin")
    form = {
        "url": "http://127.0.0.1:9/hooks?token=t0k",
        "events": "release.*, incident.*  webhook.ping",
        "format": "slack",
    }
    answer = admin.post("/webhooks/new/", form)
    endpoint = WebhookEndpoint.objects.get()
    secret = answer.context["issued"]
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    assert secret.startswith("whsec_") and endpoint.secrets() == [secret]
    assert endpoint.events == ["release.*", "incident.*", "webhook.ping"] and endpoint.format == "slack"
    page = answer.content.decode()
    assert secret in page and SHOWN_ONCE in page and "http://127.0.0.1:9/hooks?token=t0k" in page  # the full URL
    again = admin.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert secret not in again and SHOWN_ONCE not in again and "http://127.0.0.1:9/hooks?token=t0k" in again
    listed = admin.get("/integrations/").content.decode()
    assert "127.0.0.1:9" in listed and "token=t0k" not in listed


def errors_of(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="([\w-]+)-error">([^<]*)</p>', page))


def test_every_broken_rule_of_a_new_integration_is_said_at_once(demo):
    admin = user("admin")
    form = {"kind": "opsgenie", "name": " ", "serviceMap": "checkout svc-demo\nx = svc-demo\nx = svc-other"}
    errors = errors_of(admin.post("/integrations/new/", form).content.decode())
    assert set(errors) == {"integration-kind", "integration-name", "integration-serviceMap"}, errors
    assert "not a valid choice" in errors["integration-kind"] and "may not be blank" in errors["integration-name"]
    assert "line 1 (&#x27;checkout svc-demo&#x27;) is not" in errors["integration-serviceMap"]
    assert "line 3 maps &#x27;x&#x27; again" in errors["integration-serviceMap"]
    # Once each is well formed, the domain's rules, all of them: the secret's is checked first and does not hide
    # the model's.
    form = {"kind": "alertmanager", "name": "ok", "serviceMap": "checkout = svc-nope", "secret": "s" * 20}
    page = admin.post("/integrations/new/", form).content.decode()
    errors = errors_of(page)
    assert "is made by the control plane for this kind" in errors["integration-secret"]
    assert "unknown service &#x27;svc-nope&#x27;" in errors["integration-serviceMap"]
    assert 'value="ok"' in page and "checkout = svc-nope</textarea>" in page  # kept, but never the secret
    assert "s" * 20 not in page
    assert not Integration.objects.exists()


def test_every_broken_rule_of_a_new_webhook_is_said_at_once(demo, settings):
    admin = user("admin")
    form = {"url": "", "events": "", "format": "teams", "description": "d" * 201}
    errors = errors_of(admin.post("/webhooks/new/", form).content.decode())
    assert set(errors) == {"webhook-url", "webhook-format", "webhook-description"}, errors
    form = {"url": "ftp://x", "events": "release.* nonsense.verb release.*", "format": "standard"}
    errors = errors_of(admin.post("/webhooks/new/", form).content.decode())
    assert "absolute http(s) URL" in errors["webhook-url"]
    assert "&#x27;nonsense.verb&#x27; names no audit action" in errors["webhook-events"]
    assert "must not repeat a pattern" in errors["webhook-events"]
    # Where the URL resolves is checked before the model's rules: they are said as well.
    settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE = False
    form = {"url": "http://127.0.0.1:9/x", "events": "", "format": "standard"}
    page = admin.post("/webhooks/new/", form).content.decode()
    errors = errors_of(page)
    assert "a loopback address" in errors["webhook-url"] and "non-empty list" in errors["webhook-events"]
    assert 'value="http://127.0.0.1:9/x"' in page
    assert not WebhookEndpoint.objects.exists()


# --- an integration ---


def test_the_integration_page_and_its_edit_form(made):
    admin = user("admin")
    page = main(admin.get("/integrations/int-pages/"))
    assert "http://testserver/api/integrations/int-pages/events/" in page and "checkout = svc-demo" in page
    row = re.search(r'<tr id="evt-pages">.*?</tr>', page, re.S).group(0)
    assert "alertmanager.firing" in row and '<span class="badge created">created</span>' in row and "inc-789" in row
    assert "whsec_c2VjcmV0" not in page
    form = {"name": "", "serviceMap": "bad\ncheckout = svc-nope"}
    refused = admin.post("/integrations/int-pages/edit/", form)
    errors = errors_of(refused.content.decode())
    assert refused.status_code == 200 and "may not be blank" in errors["name"]
    assert "line 1" in errors["serviceMap"]
    form = {"name": "Prod alerts", "serviceMap": "bad\ncheckout = svc-nope"}
    errors = errors_of(admin.post("/integrations/int-pages/edit/", form).content.decode())
    assert "line 1" in errors["serviceMap"] and "unknown service &#x27;svc-nope&#x27;" in errors["serviceMap"]
    assert Integration.objects.get().name == "Alertmanager: prod"
    saved = admin.post("/integrations/int-pages/edit/", {"name": "Prod alerts", "serviceMap": "cart = svc-demo"})
    assert saved.status_code == 302 and saved["Location"] == "/integrations/int-pages/"
    integration = Integration.objects.get()
    assert integration.name == "Prod alerts" and integration.service_map == {"cart": "svc-demo"}
    said = admin.get("/integrations/int-pages/").content.decode()
    assert "int-pages (Prod alerts) is saved: name and service map changed." in said
    assert AuditEvent.objects.filter(action="integration.update", subject_id="int-pages").count() == 1


def test_rotating_an_integrations_secret_after_a_confirmation(made):
    admin = user("admin")
    confirm = admin.get("/integrations/int-pages/rotate/").content.decode()
    assert (
        "gets a new secret, shown once on the next page" in confirm
        and "keeps working beside it for 24 hours" in confirm
    )
    assert 'name="secret"' not in confirm  # Alertmanager's secret is made here
    assert Integration.objects.get().secrets() == ["whsec_c2VjcmV0"]  # a GET changes nothing
    answer = admin.post("/integrations/int-pages/rotate/")
    secret = answer.context["issued"]
    assert "no-store" in answer["Cache-Control"] and secret in answer.content.decode()
    assert Integration.objects.get().secrets() == [secret, "whsec_c2VjcmV0"]
    assert "still works until" in admin.get("/integrations/int-pages/").content.decode()


def test_a_pagerduty_rotation_takes_the_new_secret_and_says_what_is_wrong(made):
    with acting_as("tests"):
        integration, _ = lifecycle.create_integration("pagerduty", "PD", secret="pd-signing-secret-1234")
    admin = user("admin")
    path = f"/integrations/{integration.pk}/rotate/"
    assert 'name="secret"' in admin.get(path).content.decode()
    refused = admin.post(path, {"secret": "short"})
    assert refused.status_code == 200 and "16-200 characters" in errors_of(refused.content.decode())["secret"]
    answer = admin.post(path, {"secret": "pd-signing-secret-5678"})
    assert answer.context["issued"] == "pd-signing-secret-5678"
    integration.refresh_from_db()
    assert integration.secrets() == ["pd-signing-secret-5678", "pd-signing-secret-1234"]


def test_the_delivery_log_is_in_keyset_pages(made):
    integration = made["integration"]
    start = timezone.now() - timedelta(hours=1)
    for n in range(54):
        ReceivedEvent(
            integration=integration, received_at=start + timedelta(seconds=n), status_code=202, outcome="ignored"
        ).save()
    admin = user("admin")
    first = admin.get("/integrations/int-pages/").content.decode()
    older = re.search(r'href="(/integrations/int-pages/\?before=[^"#]+)#log" rel="next"', first).group(1)
    second = admin.get(older.replace("&amp;", "&")).content.decode()
    ids = lambda page: set(re.findall(r'<tr id="(evt-[^"]+)"', page))  # noqa: E731
    assert len(ids(first)) == 50 and len(ids(second)) == 5 and not ids(first) & ids(second)
    assert "evt-pages" in ids(first)  # the newest, first
    assert 'rel="next"' not in second and ">Newest</a>" in second
    odd = admin.get("/integrations/int-pages/", {"before": "forged"})
    assert odd.status_code == 200 and len(ids(odd.content.decode())) == 50


# --- a webhook endpoint and its deliveries ---


def test_disable_and_enable_after_confirmations(made):
    admin = user("admin")
    page = main(admin.get("/webhooks/whk-pages/"))
    assert "https://hooks.example.com/services/T000/B000/XXXX" in page  # the full URL on its own page
    assert '<tr id="msg-pages">' in page and '<tr id="msg-pending">' in page
    confirm = admin.get("/webhooks/whk-pages/disable/").content.decode()
    assert "receives nothing from now on" in confirm and "1 waiting delivery fail now" in confirm
    assert WebhookEndpoint.objects.get().enabled
    assert admin.post("/webhooks/whk-pages/disable/").status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.enabled and endpoint.disabled_reason == "disabled by dev-admin"
    assert WebhookDelivery.objects.get(pk="msg-pending").state == "failed"
    page = admin.get("/webhooks/whk-pages/").content.decode()
    assert "whk-pages (hooks.example.com) is disabled." in page and "disabled by dev-admin" in page
    again = admin.post("/webhooks/whk-pages/disable/")
    assert again.status_code == 409 and "is disabled already" in again.content.decode()
    # Disabled: a ping and a redelivery are refused with the domain's words, not a 500, and their confirmations
    # say so before anything is posted, offering no button.
    for path in ("/webhooks/whk-pages/ping/", "/webhooks/whk-pages/deliveries/msg-pages/redeliver/"):
        refused = admin.post(path)
        assert refused.status_code == 409 and "is disabled; enable it first." in refused.content.decode(), path
        asked = admin.get(path)
        assert "is disabled; enable it first." in asked.content.decode(), path
        assert '<button type="submit"' not in main(asked), path
    confirm = admin.get("/webhooks/whk-pages/enable/").content.decode()
    assert "receives the events it subscribes to again" in confirm
    assert admin.post("/webhooks/whk-pages/enable/").status_code == 302
    assert WebhookEndpoint.objects.get().enabled
    actions = list(AuditEvent.objects.filter(subject_id="whk-pages").values_list("action", flat=True))
    assert actions == ["webhook.disable", "webhook.update"]


def test_ping_and_redeliver_after_confirmations(made):
    admin = user("admin")
    confirm = admin.get("/webhooks/whk-pages/ping/").content.decode()
    assert "A webhook.ping event is sent to whk-pages (hooks.example.com) now" in confirm
    assert WebhookDelivery.objects.count() == 2
    answer = admin.post("/webhooks/whk-pages/ping/")
    ping = WebhookDelivery.objects.get(event_type="webhook.ping")
    assert answer.status_code == 302 and answer["Location"] == f"/webhooks/whk-pages/deliveries/{ping.pk}/"
    assert "is queued: the worker sends it now." in admin.get(answer["Location"]).content.decode()

    delivery = main(admin.get("/webhooks/whk-pages/deliveries/msg-pages/"))
    assert re.search(r'<tr id="try-1">.*?503.*?</tr>', delivery, re.S)
    assert re.search(r'<tr id="try-2">.*?404.*?a permanent answer.*?no such channel.*?</tr>', delivery, re.S)
    assert "&quot;type&quot;: &quot;release.activate&quot;" in delivery  # the body, pretty-printed
    confirm = admin.get("/webhooks/whk-pages/deliveries/msg-pages/redeliver/").content.decode()
    assert (
        "msg-pages (release.activate, failed after 2 tries) is sent to whk-pages (hooks.example.com) again" in confirm
    )
    assert WebhookDelivery.objects.get(pk="msg-pages").state == "failed"
    answer = admin.post("/webhooks/whk-pages/deliveries/msg-pages/redeliver/")
    assert answer.status_code == 302 and answer["Location"] == "/webhooks/whk-pages/deliveries/msg-pages/"
    assert WebhookDelivery.objects.get(pk="msg-pages").state == "pending"
    # Waiting to be sent: the domain refuses another, and the page says so (409), never a 500.
    refused = admin.post("/webhooks/whk-pages/deliveries/msg-pages/redeliver/")
    assert refused.status_code == 409 and "is pending: it is sent already, or about to be." in refused.content.decode()
    assert '<button type="submit"' not in main(refused)


def test_a_delivery_of_another_endpoint_is_not_found(made):
    with acting_as("tests"):
        other, _ = lifecycle.create_webhook("http://127.0.0.1:9/other", ["release.*"])
    admin = user("admin")
    assert admin.get(f"/webhooks/{other.pk}/deliveries/msg-pages/").status_code == 404
    assert admin.post(f"/webhooks/{other.pk}/deliveries/msg-pages/redeliver/").status_code == 404


def test_rotating_a_webhooks_secret_after_a_confirmation(made):
    admin = user("admin")
    confirm = admin.get("/webhooks/whk-pages/rotate/").content.decode()
    assert "every request is signed with both the current and the new secret" in confirm
    answer = admin.post("/webhooks/whk-pages/rotate/")
    secret = answer.context["issued"]
    assert secret in answer.content.decode() and "no-store" in answer["Cache-Control"]
    assert WebhookEndpoint.objects.get().secrets() == [secret, "whsec_c2VjcmV0"]


def test_writes_need_the_csrf_token(made):
    admin = user("admin", csrf=True)
    for path in (
        "/integrations/new/",
        "/webhooks/new/",
        "/webhooks/whk-pages/disable/",
        "/integrations/int-pages/rotate/",
    ):
        assert admin.post(path, {"kind": "generic", "name": "x"}).status_code == 403, path
    assert Integration.objects.count() == 1 and WebhookEndpoint.objects.get().enabled


# --- queries: constant with more rows ---


def grow(n: int):
    integration, endpoint = Integration.objects.get(pk="int-pages"), WebhookEndpoint.objects.get(pk="whk-pages")
    for i in range(Integration.objects.count(), n):
        more = Integration(kind="generic", name=f"g{i}", created_by="tests", secret_sealed="x")
        more.save()
        ReceivedEvent(integration=more, status_code=202, outcome="ignored").save()
        hook = WebhookEndpoint(
            url=f"https://h{i}.example.com/", events=["release.*"], created_by="tests", secret_sealed="x"
        )
        hook.save()
        WebhookDelivery(endpoint=hook, event_type="release.activate", body="{}").save()
    for _ in range(ReceivedEvent.objects.filter(integration=integration).count(), n):
        ReceivedEvent(integration=integration, status_code=202, outcome="ignored").save()
        delivery = WebhookDelivery(endpoint=endpoint, event_type="release.activate", body="{}", state="failed")
        delivery.save()
        WebhookAttempt(delivery=delivery, number=1, started_at=timezone.now(), duration_ms=5, status_code=500).save()


PAGES = {
    "/integrations/": 4,  # the session, its user, the integrations, the webhooks
    "/integrations/int-pages/": 4,  # the session, its user, the integration, a page of its log
    "/webhooks/whk-pages/": 4,  # the session, its user, the endpoint, a page of its deliveries
    "/webhooks/whk-pages/deliveries/msg-pages/": 4,  # the session, its user, the delivery and endpoint, its tries
}


@pytest.mark.parametrize("path", PAGES)
def test_query_count_is_constant(made, path):
    admin = user("admin")

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin.get(path).status_code == 200
        return len(captured)

    grow(3)
    small = count()
    grow(60)
    assert small == count() == PAGES[path], [q["sql"] for q in connection.queries[-PAGES[path] :]]


# --- the admin ---


def test_the_admin_shows_no_secret_and_disables_and_redelivers(made):
    admin = user("admin")
    for path in (
        "/admin/integrations/integration/",
        "/admin/integrations/integration/int-pages/change/",
        "/admin/integrations/webhookendpoint/",
        "/admin/integrations/webhookendpoint/whk-pages/change/",
        "/admin/integrations/receivedevent/",
        "/admin/integrations/webhookdelivery/",
        "/admin/integrations/webhookdelivery/msg-pages/change/",
    ):
        response = admin.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        assert "secret_sealed" not in page and made["endpoint"].secret_sealed not in page, path
        assert made["integration"].secret_sealed not in page, path
    delivery = admin.get("/admin/integrations/webhookdelivery/msg-pages/change/").content.decode()
    assert "a permanent answer" in delivery and "no such channel" in delivery  # its tries, inline
    assert 'name="tries-0-error"' not in delivery  # shown, not a form

    changelist = "/admin/integrations/webhookdelivery/"
    picked = {"action": "redeliver", "_selected_action": ["msg-pages", "msg-pending"]}
    said = admin.post(changelist, picked, follow=True).content.decode()
    assert "Redeliver selected: 1 done." in said and "msg-pending is pending: it is sent already" in said
    assert WebhookDelivery.objects.get(pk="msg-pages").state == "pending"
    picked = {"action": "disable", "_selected_action": ["whk-pages"]}
    said = admin.post("/admin/integrations/webhookendpoint/", picked, follow=True).content.decode()
    assert "Disable selected: 1 done." in said
    assert WebhookEndpoint.objects.get().disabled_reason == "disabled by dev-admin"


# --- in a real browser, through the real server ---


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")
@pytest.mark.django_db(transaction=True)  # the real server sees committed rows only
@pytest.mark.usefixtures("committed_demo")
def test_in_the_browser_make_a_webhook_and_an_integration(watched, web):
    base = web(CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE=1)
    admin = watched(base)
    page = admin.sign_in("admin", then="/integrations/")
    expect(page.get_by_role("link", name="Integrations")).to_have_attribute("aria-current", "page")

    page.fill("#webhook-url", "http://127.0.0.1:9/hooks")
    page.fill("#webhook-events", "release.* nonsense.verb")
    page.get_by_role("button", name="Create the webhook").click()
    expect(page.locator("#webhook-events-error")).to_contain_text("names no audit action")
    admin.screenshots("integrations-webhook-error")
    page.fill("#webhook-events", "release.*, integration.*")
    page.fill("#webhook-description", "Deploys channel")
    page.get_by_role("button", name="Create the webhook").click()
    expect(page.get_by_text(SHOWN_ONCE)).to_be_visible()
    secret = page.locator("#issued-secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()  # copy.js shows it
    expect(page.locator("main")).to_contain_text("http://127.0.0.1:9/hooks")
    admin.screenshots("integrations-webhook-created")
    webhook = page.locator("h1 .mono").inner_text()

    page = admin.go("/integrations/")
    page.select_option("#integration-kind", "alertmanager")
    page.fill("#integration-name", "Alertmanager: prod")
    page.fill("#integration-serviceMap", "checkout = svc-demo")
    page.get_by_role("button", name="Create the integration").click()
    expect(page.get_by_text(SHOWN_ONCE)).to_be_visible()
    assert page.locator("#issued-secret").input_value().startswith("whsec_")
    expect(page.locator("#events-url")).to_have_value(re.compile(r"/api/integrations/int-[a-z0-9]+/events/$"))
    integration = page.locator("#events-url").input_value().split("/")[-3]
    expect(page.locator("main")).to_contain_text("type: Bearer")
    admin.screenshots("integration-created")

    page = admin.go("/integrations/")
    expect(page.locator(f"tr#{webhook}")).to_contain_text("127.0.0.1:9")
    expect(page.locator(f"tr#{webhook} .badge.pending")).to_be_visible()  # integration.create, to be sent
    expect(page.locator("#integrations")).to_contain_text("Alertmanager: prod")
    admin.screenshots("integrations")

    page = admin.go(f"/webhooks/{webhook}/")
    page.get_by_role("link", name="Send a ping…").click()
    expect(page.locator("#what")).to_contain_text("A webhook.ping event is sent")
    admin.screenshots("webhook-confirm-ping")
    page.get_by_role("button", name="Send the ping").click()
    expect(page.locator("h1")).to_contain_text("webhook.ping")
    admin.screenshots("webhook-delivery")
    delivery = page.url.replace(base, "")
    page = admin.go(f"/webhooks/{webhook}/")
    expect(page.locator("table")).to_contain_text("integration.create")
    admin.screenshots("webhook")
    page = admin.go(f"/integrations/{integration}/")
    admin.screenshots("integration")

    paths = ("/integrations/", f"/integrations/{integration}/", f"/webhooks/{webhook}/", delivery)
    for path in (*paths, f"/webhooks/{webhook}/ping/"):
        shown = admin.go(path)
        shown.set_viewport_size({"width": 390, "height": 900})
        # Only a table or a snippet scrolls sideways at 390 px (inside its box), never the page.
        assert shown.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        shown.set_viewport_size({"width": 1400, "height": 900})
    assert secret not in admin.go(f"/webhooks/{webhook}/").content()
    admin.clean()
