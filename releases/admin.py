from django.contrib import admin

from controlplane.admin import DomainAdmin, ReadOnlyAdmin, lifecycle_action
from releases import workflows
from releases.models import Observation, Release, RunApproval, RunLogEntry, WorkflowRun


@admin.register(Release)
class ReleaseAdmin(DomainAdmin):
    list_display = [
        "id",
        "service",
        "environment",
        "version",
        "sha",
        "status",
        "is_current",
        "created_at",
        "activated_at",
        "superseded_by",
        "restores",
    ]
    list_filter = ["status", ("is_current", admin.BooleanFieldListFilter), "environment"]
    list_select_related = ["service", "environment", "superseded_by", "restores"]
    search_fields = ["id", "sha", "version", "service__id", "service__name"]
    autocomplete_fields = ["service", "environment"]
    readonly_fields = [
        "status",
        "created_at",
        "activated_at",
        "is_current",
        "superseded_by",
        "superseded_at",
        "rollback_of",
        "restores",
    ]
    date_hierarchy = "created_at"
    actions = [lifecycle_action(workflows.deploy, "Deploy selected (Draft releases)")]


class RunLogEntryInline(admin.TabularInline):
    model = RunLogEntry
    fields = ["ts", "level", "message", "meta"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class RunApprovalInline(admin.TabularInline):
    """The approvals and rejections a run received: history, never edited here (decide through the API, the
    pages or the CLI, which refuse self-approval and count each principal once)."""

    model = RunApproval
    fields = ["at", "actor", "decision", "comment"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "release",
        "source_release",
        "actor",
        "state",
        "approvals_required",
        "started_at",
        "finished_at",
    ]
    list_filter = ["kind", "state"]
    list_select_related = ["release", "source_release"]
    search_fields = ["id", "actor", "release__id", "release__service__id"]
    readonly_fields = ["state", "approvals_required", "waiting_reason", "finished_at"]
    inlines = [RunApprovalInline, RunLogEntryInline]


@admin.register(RunLogEntry)
class RunLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["ts", "run", "level", "message"]
    list_filter = ["level"]
    list_select_related = ["run"]
    search_fields = ["run__id", "message"]


@admin.register(Observation)
class ObservationAdmin(ReadOnlyAdmin):
    """What the last drift check saw (releases/drift.py): written by the checks alone, so only read here."""

    list_display = ["service", "environment", "adapter", "drifted", "running", "expected", "checked_at"]
    list_filter = ["drifted", "adapter", "environment"]
    list_select_related = ["service", "environment"]
    search_fields = ["service__id", "environment__id", "running", "expected"]
    readonly_fields = [
        "service",
        "environment",
        "adapter",
        "connection",
        "release",
        "expected",
        "running",
        "drifted",
        "error",
        "checked_at",
    ]
