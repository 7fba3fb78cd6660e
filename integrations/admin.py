"""Integrations in the admin: seen, never edited here (made and changed on /integrations/, the APIs or cpctl, where
a secret is shown once). No sealed secret is ever a field of these pages. Webhooks can be disabled and deliveries
redelivered, through integrations.lifecycle."""

from django.contrib import admin

from controlplane.admin import ReadOnlyAdmin, lifecycle_action
from controlplane.identity.context import current_actor
from integrations import lifecycle
from integrations.models import Integration, ReceivedEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint

SEALED = ["secret_sealed", "previous_secret_sealed"]


def disable(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return lifecycle.disable(endpoint, f"disabled by {current_actor()}")


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "kind", "created_by", "created_at", "previous_valid_until"]
    list_filter = ["kind"]
    search_fields = ["id", "name"]
    exclude = SEALED


@admin.register(ReceivedEvent)
class ReceivedEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "integration", "received_at", "event_type", "external_id", "status_code", "outcome", "reason"]
    list_filter = ["outcome", "integration"]
    list_select_related = ["integration"]
    search_fields = ["id", "event_id", "external_id", "integration__id"]
    date_hierarchy = "received_at"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "events", "format", "enabled", "disabled_reason", "created_at"]
    list_filter = ["format", ("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["id", "url", "description"]
    exclude = SEALED
    actions = [lifecycle_action(disable, "Disable selected")]

    @admin.display(boolean=True, ordering="disabled_at")
    def enabled(self, obj):
        return obj.enabled


class WebhookAttemptInline(admin.TabularInline):
    """A delivery's tries: history, never edited here."""

    model = WebhookAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "error", "response"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "endpoint", "event_type", "state", "attempts", "last_status", "next_attempt_at", "created_at"]
    list_filter = ["state", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["id", "event_type", "endpoint__id"]
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
    actions = [lifecycle_action(lifecycle.redeliver, "Redeliver selected")]
