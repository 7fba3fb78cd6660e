"""The pages of `integrations` (docs/pages.md, "Integrations"), admins only as the permission table says:

- `/integrations/` lists the integrations (incidents in) and the webhook endpoints (events out), each with a form
  to make one; the answer to either form is the new one's page with its secret, shown this once.
- `/integrations/<id>/`: the URL to give the source, how to point PagerDuty or Alertmanager at it, the name and
  service map to edit, and its delivery log; `…/rotate/` confirms a new secret.
- `/webhooks/<id>/`: the endpoint and its deliveries; `…/disable/`, `…/enable/`, `…/rotate/`, `…/ping/` confirm;
  `/webhooks/<id>/deliveries/<id>/` is a delivery with its tries and body, `…/redeliver/` confirms.

A thin door: forms go through the REST serializers (so their messages are the API's), every write through
integrations.lifecycle after a confirmation; a refusal (409) is a message on the confirmation page."""

import copy
import json
import re
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from controlplane.api.base import saved_from_form
from controlplane.errors import Conflict
from controlplane.identity.context import current_actor
from controlplane.identity.roles import can
from controlplane.identity.views import refused, sign_in_first
from controlplane.keyset import Keyset
from integrations import lifecycle
from integrations.api import IntegrationSerializer, WebhookSerializer
from integrations.inbound import PAGERDUTY_MOVES
from integrations.models import (
    KINDS,
    ROTATION_OVERLAP,
    DeliveryState,
    Integration,
    ReceivedEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)

PAGE_SIZE = 50
INTEGRATION_FIELDS = ("kind", "name", "serviceMap", "secret")
WEBHOOK_FIELDS = ("url", "events", "format", "description")
# What a model's validation may not see on a form's candidate: the sealed secrets and who made it are the
# domain's to set.
NOT_FROM_FORMS = ["id", "secret_sealed", "previous_secret_sealed", "previous_valid_until", "created_by"]

# The delivery logs, newest first; "Older" is the next page's signed cursor (an odd one reads as the first page).
RECEIVED_NEWEST_FIRST = Keyset(ReceivedEvent, ("-received_at", "-id"), "page:integration-received")
DELIVERIES_NEWEST_FIRST = Keyset(WebhookDelivery, ("-created_at", "-id"), "page:webhook-deliveries")


def _door(request, action: str):
    """The answer for a request that may not go on (to sign in, or a 403 naming the role), else None."""
    if request.principal is None:
        return sign_in_first(request)
    if not can(request.principal, action):
        return refused(request, action)
    return None


# --- forms: every broken rule at once ---


def _lines_to_map(text: str) -> tuple[dict[str, str], list[str]]:
    """A service map typed as lines of `external = svc-id`: the map, and what could not be read."""
    mapping: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        external, equals, service = (part.strip() for part in line.partition("="))
        if not equals or not external or not service:
            problems.append(f"line {number} ({line.strip()!r}) is not `external = svc-id`.")
        elif external in mapping:
            problems.append(f"line {number} maps {external!r} again.")
        else:
            mapping[external] = service
    return mapping, problems


def _map_to_lines(mapping: dict) -> str:
    return "\n".join(f"{external} = {service}" for external, service in mapping.items())


def _events(text: str) -> list[str]:
    """Events typed comma- or space-separated."""
    return [e for e in re.split(r"[\s,]+", text) if e]


def _merged(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for source in sources:
        for name, said in source.items():
            errors.setdefault(name, []).extend(str(m) for m in said if str(m) not in errors.get(name, []))
    return errors


def _saved_or_every_error(serializer, candidate, door_errors: dict[str, list[str]]):
    """(the object saved through its REST serializer, {}), or (None, every broken rule): the door's own (a map line
    it cannot read), the serializer's, and the model's. The domain checks some rules before the model's and stops
    there (a secret given for a kind that makes its own, an address webhooks may not go to), so on any refusal the
    model is asked about the rest as well, on `candidate(validated data)`, an unsaved copy."""
    if serializer.is_valid() and not door_errors:
        saved, errors = saved_from_form(serializer)
        if saved is not None:
            return saved, {}
    else:
        errors = {name: [str(m) for m in said] for name, said in serializer.errors.items()}
    if not serializer.errors:
        try:
            candidate(serializer.validated_data).full_clean(exclude=NOT_FROM_FORMS)
        except ValidationError as error:
            errors = _merged(errors, serializer.api_errors(error))
    return None, _merged(errors, door_errors)


def _new_integration(validated: dict) -> Integration:
    return Integration(kind=validated["kind"], name=validated["name"], service_map=validated.get("service_map") or {})


def _new_webhook(validated: dict) -> WebhookEndpoint:
    fields = ("url", "events", "format", "description")
    return WebhookEndpoint(**{name: validated[name] for name in fields if name in validated})


def _changed(instance, validated: dict):
    candidate = copy.copy(instance)
    for name, value in validated.items():
        setattr(candidate, name, value)
    return candidate


def _other_errors(errors: dict, fields) -> list[str]:
    return [m for name, said in errors.items() if name not in fields for m in said]


# --- the list ---


def _listed(request) -> dict:
    principal = request.principal
    context = {
        "principal": principal,
        "kinds": KINDS,
        "formats": WebhookFormat.choices,
        "reads_integrations": can(principal, "integration.read"),
        "reads_webhooks": can(principal, "webhook.read"),
    }
    if context["reads_integrations"]:
        last = ReceivedEvent.objects.filter(integration=OuterRef("pk")).order_by("-received_at", "-id")
        integrations = Integration.objects.annotate(
            received_count=Count("received"),
            last_received_at=Max("received__received_at"),
            last_outcome=Subquery(last.values("outcome")[:1]),
        ).order_by("name", "id")
        serializer = IntegrationSerializer(context={"request": request})
        context["integrations"] = [(i, serializer.get_url(i)) for i in integrations]
    if context["reads_webhooks"]:
        last = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-id")
        context["webhooks"] = WebhookEndpoint.objects.annotate(
            last_state=Subquery(last.values("state")[:1]),
            last_created_at=Subquery(last.values("created_at")[:1]),
            last_status=Subquery(last.values("last_status")[:1]),
        ).order_by("created_at", "id")
    context["can_create_integration"] = can(principal, "integration.create")
    context["can_create_webhook"] = can(principal, "webhook.create")
    return context


def _list_page(request, **extra):
    context = {
        "integration_values": {"kind": KINDS[0][0], "name": "", "serviceMap": ""},
        "webhook_values": {"url": "", "events": "", "format": WebhookFormat.STANDARD, "description": ""},
        "integration_errors": {},
        "webhook_errors": {},
        **_listed(request),
        **extra,
    }
    return render(request, "integrations/list.html", context)


@require_safe
def integration_list(request):
    if request.principal is None:
        return sign_in_first(request)
    if not (can(request.principal, "integration.read") or can(request.principal, "webhook.read")):
        return refused(request, "integration.read")
    return _list_page(request)


@never_cache  # the answer to a creation carries the secret: no cache keeps it
@require_http_methods(["GET", "POST"])
def integration_create(request):
    """POST: the form of the list. GET (the address bar after a create): to that form."""
    if request.method == "GET":
        return redirect(f"{reverse('integrations:list')}#new-integration")
    if stop := _door(request, "integration.create"):
        return stop
    values = {name: request.POST.get(name, "").strip() for name in ("kind", "name", "serviceMap")}
    mapping, unreadable = _lines_to_map(values["serviceMap"])
    data = {"kind": values["kind"], "name": values["name"], "serviceMap": mapping}
    if secret := request.POST.get("secret", "").strip():
        data["secret"] = secret
    serializer = IntegrationSerializer(data=data, context={"request": request})
    integration, errors = _saved_or_every_error(
        serializer, _new_integration, {"serviceMap": unreadable} if unreadable else {}
    )
    if integration is None:
        # The secret is not written back into the form: it is typed (pasted) again.
        other = _other_errors(errors, INTEGRATION_FIELDS)
        return _list_page(request, integration_values=values, integration_errors=errors, integration_other=other)
    return _integration_page(request, integration, issued=serializer.secret)


@never_cache
@require_http_methods(["GET", "POST"])
def webhook_create(request):
    if request.method == "GET":
        return redirect(f"{reverse('integrations:list')}#new-webhook")
    if stop := _door(request, "webhook.create"):
        return stop
    values = {name: request.POST.get(name, "").strip() for name in WEBHOOK_FIELDS}
    data = {**values, "events": _events(values["events"])}
    serializer = WebhookSerializer(data=data)
    endpoint, errors = _saved_or_every_error(serializer, _new_webhook, {})
    if endpoint is None:
        other = _other_errors(errors, WEBHOOK_FIELDS)
        return _list_page(request, webhook_values=values, webhook_errors=errors, webhook_other=other)
    return _webhook_page(request, endpoint, issued=serializer.secret)


# --- an integration ---


def _events_url(request, integration: Integration) -> str:
    """Where its source posts, as the API says it."""
    return IntegrationSerializer(context={"request": request}).get_url(integration)


def _newest_first(keyset: Keyset, queryset, request, path: str) -> dict:
    """One page of a delivery log, newest first: `before` is the cursor of the page's last row. Its links name the
    page's own path (the answer to a form is shown at the form's URL)."""
    page, paged = keyset.page_from(queryset, PAGE_SIZE, request.GET.get("before", ""))
    older = page.next_cursor()
    older = f"{path}?{urlencode({'before': older})}" if older else ""
    return {"rows": page.rows, "path": path, "paged": paged, "older": older}


def _integration_page(request, integration: Integration, status: int = 200, **extra):
    principal = request.principal
    values = {"name": integration.name, "serviceMap": _map_to_lines(integration.service_map)}
    context = {
        "principal": principal,
        "integration": integration,
        "url": _events_url(request, integration),
        "Kind": Integration.Kind,
        "pagerduty_events": list(PAGERDUTY_MOVES),
        "can_update": can(principal, "integration.update"),
        "can_rotate": can(principal, "integration.rotate"),
        "values": values,
        "errors": {},
        "now": timezone.now(),
        "log": _newest_first(
            RECEIVED_NEWEST_FIRST,
            ReceivedEvent.objects.filter(integration=integration),
            request,
            reverse("integrations:integration", args=[integration.pk]),
        ),
        **extra,
    }
    return render(request, "integrations/integration.html", context, status=status)


@require_safe
def integration_detail(request, pk: str):
    if stop := _door(request, "integration.read"):
        return stop
    return _integration_page(request, get_object_or_404(Integration, pk=pk))


@require_POST
def integration_edit(request, pk: str):
    """The name and the service map, through the REST serializer and integrations.lifecycle."""
    if stop := _door(request, "integration.update"):
        return stop
    integration = get_object_or_404(Integration, pk=pk)
    before = (integration.name, dict(integration.service_map))
    values = {name: request.POST.get(name, "").strip() for name in ("name", "serviceMap")}
    mapping, unreadable = _lines_to_map(values["serviceMap"])
    serializer = IntegrationSerializer(integration, data={"name": values["name"], "serviceMap": mapping}, partial=True)
    saved, errors = _saved_or_every_error(
        serializer, lambda validated: _changed(integration, validated), {"serviceMap": unreadable} if unreadable else {}
    )
    if saved is None:
        integration.refresh_from_db()
        other = _other_errors(errors, ("name", "serviceMap"))
        return _integration_page(request, integration, values=values, errors=errors, other_errors=other)
    changed = [
        what
        for what, old, new in (("name", before[0], saved.name), ("service map", before[1], saved.service_map))
        if old != new
    ]
    said = f"{' and '.join(changed)} changed" if changed else "nothing changed"
    messages.success(request, f"{saved.pk} ({saved.name}) is saved: {said}.")
    return redirect(reverse("integrations:integration", args=[saved.pk]))


def _hours(delta) -> int:
    return int(delta.total_seconds() // 3600)


@never_cache  # the answer carries the new secret
@require_http_methods(["GET", "POST"])
def integration_rotate(request, pk: str):
    """GET: the confirmation. POST: a new secret (PagerDuty's, given), shown once on the answer."""
    if stop := _door(request, "integration.rotate"):
        return stop
    integration = get_object_or_404(Integration, pk=pk)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            integration, secret = lifecycle.rotate_integration_secret(
                integration, request.POST.get("secret", "").strip() or None
            )
        except ValidationError as error:
            errors = IntegrationSerializer().api_errors(error)
        else:
            return _integration_page(request, integration, issued=secret)
    takes_secret = integration.kind == Integration.Kind.PAGERDUTY
    what = [
        f"{integration.pk} ({integration.name}) gets a new secret, shown once on the next page.",
        f"The current secret keeps working beside it for {_hours(ROTATION_OVERLAP)} hours, until about "
        f"{(timezone.now() + ROTATION_OVERLAP):%Y-%m-%d %H:%M} UTC: time to give the new one to "
        f"{integration.get_kind_display()}.",
    ]
    if takes_secret:
        what.append(
            "PagerDuty signs with a secret of its own: rotate it in PagerDuty's webhook subscription, then give "
            "the new one here."
        )
    context = {
        "principal": request.principal,
        "title": f"Rotate the secret of {integration.pk}",
        "what": what,
        "verb": "Rotate the secret",
        "secret_field": takes_secret,
        "errors": errors,
        "other_errors": _other_errors(errors, ("secret",)),
        "back": reverse("integrations:integration", args=[integration.pk]),
    }
    return render(request, "integrations/confirm.html", context)


# --- a webhook endpoint ---


def _webhook_page(request, endpoint: WebhookEndpoint, **extra):
    principal = request.principal
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    context = {
        "principal": principal,
        "endpoint": endpoint,
        "can_update": can(principal, "webhook.update"),
        "can_rotate": can(principal, "webhook.rotate"),
        "can_ping": can(principal, "webhook.ping"),
        "log": _newest_first(
            DELIVERIES_NEWEST_FIRST, deliveries, request, reverse("integrations:webhook", args=[endpoint.pk])
        ),
        "now": timezone.now(),
        **extra,
    }
    return render(request, "integrations/webhook.html", context)


@require_safe
def webhook_detail(request, pk: str):
    if stop := _door(request, "webhook.read"):
        return stop
    return _webhook_page(request, get_object_or_404(WebhookEndpoint, pk=pk))


def _confirmation(request, endpoint: WebhookEndpoint, title: str, what: list[str], verb: str, **extra):
    context = {
        "principal": request.principal,
        "title": title,
        "what": what,
        "verb": verb,
        "back": reverse("integrations:webhook", args=[endpoint.pk]),
        **extra,
    }
    return render(request, "integrations/confirm.html", context, status=409 if extra.get("problem") else 200)


@require_http_methods(["GET", "POST"])
def webhook_switch(request, pk: str, enable: bool):
    """GET: the confirmation. POST: turn the endpoint off (what waits fails, saying why) or back on."""
    if stop := _door(request, "webhook.update"):
        return stop
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    verb = "Enable" if enable else "Disable"
    title = f"{verb} {endpoint.pk}"
    if endpoint.enabled == enable:
        problem = f"{endpoint.pk} is {'enabled' if enable else 'disabled'} already."
        return _confirmation(request, endpoint, title, [], verb, problem=problem)
    if request.method == "POST":
        try:
            if enable:
                lifecycle.update_webhook(endpoint, enabled=True)
            else:
                lifecycle.disable(endpoint, f"disabled by {current_actor()}")
        except (Conflict, ValidationError) as refusal:
            return _confirmation(request, endpoint, title, [], verb, problem=_said(refusal))
        messages.success(request, f"{endpoint.pk} ({endpoint.host}) is {'enabled' if enable else 'disabled'}.")
        return redirect(reverse("integrations:webhook", args=[endpoint.pk]))
    if enable:
        what = [
            f"{endpoint.pk} ({endpoint.host}) receives the events it subscribes to again, from now on.",
            "What failed while it was disabled is not sent by itself: redeliver it from its delivery's page.",
        ]
    else:
        waiting = WebhookDelivery.objects.filter(endpoint=endpoint, state=DeliveryState.PENDING).count()
        what = [
            f"{endpoint.pk} ({endpoint.host}) receives nothing from now on.",
            f"{waiting} waiting deliver{'y' if waiting == 1 else 'ies'} fail now, saying it was disabled; "
            "enable it again and redeliver them to send them after all.",
        ]
    return _confirmation(request, endpoint, title, what, verb)


def _said(refusal: Exception) -> str:
    if isinstance(refusal, ValidationError) and hasattr(refusal, "error_dict"):
        return " ".join(f"{name}: {m}" for name, said in refusal.message_dict.items() for m in said)
    return str(refusal)


@never_cache  # the answer carries the new secret
@require_http_methods(["GET", "POST"])
def webhook_rotate(request, pk: str):
    if stop := _door(request, "webhook.rotate"):
        return stop
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if request.method == "POST":
        endpoint, secret = lifecycle.rotate_webhook_secret(endpoint)
        return _webhook_page(request, endpoint, issued=secret)
    what = [
        f"{endpoint.pk} ({endpoint.host}) gets a new secret, shown once on the next page.",
        f"For {_hours(ROTATION_OVERLAP)} hours every request is signed with both the current and the new secret "
        "(two signatures in webhook-signature), so the receiver can switch when it likes.",
    ]
    return _confirmation(request, endpoint, f"Rotate the secret of {endpoint.pk}", what, "Rotate the secret")


@require_http_methods(["GET", "POST"])
def webhook_ping(request, pk: str):
    if stop := _door(request, "webhook.ping"):
        return stop
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    title, verb = f"Send a ping to {endpoint.pk}", "Send the ping"
    if request.method == "POST":
        try:
            delivery = lifecycle.ping(endpoint)
        except Conflict as conflict:
            return _confirmation(request, endpoint, title, [], verb, problem=str(conflict))
        messages.success(request, f"{delivery.pk} ({delivery.event_type}) is queued: the worker sends it now.")
        return redirect(reverse("integrations:delivery", args=[endpoint.pk, delivery.pk]))
    what = [
        f"A {lifecycle.PING} event is sent to {endpoint.pk} ({endpoint.host}) now, signed like any other, "
        "and logged with its deliveries."
    ]
    return _confirmation(request, endpoint, title, what, verb, problem=lifecycle.ping_refusal(endpoint))


# --- a delivery ---


def _delivery(pk: str, delivery_pk: str) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.select_related("endpoint"), endpoint_id=pk, pk=delivery_pk)


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


@require_safe
def delivery_detail(request, pk: str, delivery_pk: str):
    if stop := _door(request, "webhook.read"):
        return stop
    delivery = _delivery(pk, delivery_pk)
    context = {
        "principal": request.principal,
        "endpoint": delivery.endpoint,
        "delivery": delivery,
        "tries": list(delivery.tries.all()),
        "body": _pretty(delivery.body),
        "can_redeliver": can(request.principal, "webhook.redeliver"),
    }
    return render(request, "integrations/delivery.html", context)


@require_http_methods(["GET", "POST"])
def delivery_redeliver(request, pk: str, delivery_pk: str):
    """GET: the confirmation. POST: send it again now, its id and body unchanged; a refusal is a 409 message."""
    if stop := _door(request, "webhook.redeliver"):
        return stop
    delivery = _delivery(pk, delivery_pk)
    endpoint = delivery.endpoint
    title, verb = f"Redeliver {delivery.pk}", f"Redeliver {delivery.pk}"
    back = reverse("integrations:delivery", args=[endpoint.pk, delivery.pk])
    if request.method == "POST":
        try:
            lifecycle.redeliver(delivery)
        except Conflict as conflict:
            return _confirmation(request, endpoint, title, [], verb, problem=str(conflict), back=back)
        messages.success(request, f"{delivery.pk} is queued again: the worker sends it now.")
        return redirect(back)
    what = [
        f"{delivery.pk} ({delivery.event_type}, {delivery.state} after {delivery.attempts} "
        f"tr{'y' if delivery.attempts == 1 else 'ies'}) is sent to {endpoint.pk} ({endpoint.host}) again, now.",
        "Its webhook-id and body are as they were: a receiver that already has it ignores it.",
    ]
    refusal = lifecycle.redelivery_refusal(delivery)
    return _confirmation(request, endpoint, title, what, verb, back=back, problem=refusal)
