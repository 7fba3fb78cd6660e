from django.contrib import admin

from controlplane.admin import DomainAdmin, lifecycle_action
from incidents import lifecycle
from incidents.models import Incident


@admin.register(Incident)
class IncidentAdmin(DomainAdmin):
    list_display = ["id", "service", "severity", "status", "title", "started_at", "link"]
    list_filter = ["status", "severity"]
    list_select_related = ["service"]
    search_fields = ["id", "title", "service__id", "service__name"]
    autocomplete_fields = ["service", "release"]
    readonly_fields = ["status", "acknowledged_at", "resolved_at"]
    actions = [
        lifecycle_action(lifecycle.acknowledge, "Acknowledge selected"),
        lifecycle_action(lifecycle.resolve, "Resolve selected"),
    ]
