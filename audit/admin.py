from django.contrib import admin

from audit.models import AuditEvent
from controlplane.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "ts", "actor", "action", "subject_type", "subject_id"]
    list_filter = ["subject_type"]
    search_fields = ["actor", "action", "subject_id"]
    readonly_fields = ["seq", "ts", "actor", "action", "subject_type", "subject_id", "metadata"]
