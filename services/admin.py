from django import forms
from django.contrib import admin

from controlplane import adapters, connections
from controlplane.admin import ArchivedFilter, DomainAdmin, DomainModelForm, LinesField, lifecycle_action
from services import lifecycle
from services.models import (
    ORDER_RULE,
    WEEKDAYS,
    ChangeWindow,
    Environment,
    Freeze,
    Service,
    environment_links_problem,
)

archive = lifecycle_action(lifecycle.archive, "Archive selected")
restore = lifecycle_action(lifecycle.restore, "Restore selected")


def connections_help() -> str:
    """What the connection field accepts: the connections configured now (CONTROLPLANE_CONNECTIONS), by name."""
    configured = connections.configured()
    known = ", ".join(f"{name} ({c.adapter}: {c.where})" for name, c in sorted(configured.items()))
    return (
        "A connection from CONTROLPLANE_CONNECTIONS: its adapter deploys here for real (docs/adapters.md). Empty: "
        f"every adapter simulates. Configured: {known or 'none'}."
    )


class EnvironmentForm(DomainModelForm):
    policy_refs = LinesField(required=False, help_text="One per line, like policy:change-window:weekday.")
    # Without the form's own bounds, so its range is refused in the model's words, like anything else.
    order = forms.IntegerField(
        required=False,
        help_text=Environment._meta.get_field("order").help_text,
        error_messages={"invalid": ORDER_RULE},
    )

    class Meta:
        model = Environment
        fields = ["id", "name", "region", "cluster", "policy_refs", "order", "connection"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].help_text = connections_help()  # the configuration now, not at import


@admin.register(Environment)
class EnvironmentAdmin(DomainAdmin):
    form = EnvironmentForm
    # Listed in promotion order (the model's ordering), its `order` beside the name.
    list_display = ["id", "name", "order", "region", "cluster", "mode", "connection", "is_production", "archived"]
    list_filter = [ArchivedFilter]
    search_fields = ["id", "name", "region", "cluster", "connection"]
    actions = [archive, restore]

    @admin.display(description="mode", ordering="connection")
    def mode(self, obj):
        return obj.mode

    @admin.display(boolean=True)
    def is_production(self, obj):
        return obj.is_production

    @admin.display(boolean=True, ordering="archived_at")
    def archived(self, obj):
        return obj.is_archived


class ServiceForm(DomainModelForm):
    deployment_adapters = forms.MultipleChoiceField(
        choices=[(a.name, f"{a.name} — {a.title}") for a in adapters.registry.values()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Service
        fields = ["id", "name", "repo", "deployment_adapters", "environments"]

    def clean(self):
        cleaned = super().clean()
        # The same rule the m2m signal enforces, checked here so the admin shows it as a form error.
        if "environments" in cleaned:
            chosen = {env.pk for env in cleaned["environments"]}
            linked = set(self.instance.environments.values_list("pk", flat=True)) if self.instance.pk else set()
            for adding, ids in ((True, chosen - linked), (False, linked - chosen)):
                problem = ids and environment_links_problem({self.instance.pk}, ids, adding=adding)
                if problem:
                    self.add_error("environments", problem)
        return cleaned


@admin.register(Service)
class ServiceAdmin(DomainAdmin):
    form = ServiceForm
    list_display = ["id", "name", "repo", "adapters", "environment_names", "archived"]
    list_filter = [ArchivedFilter, "environments"]
    search_fields = ["id", "name", "repo"]
    filter_horizontal = ["environments"]
    actions = [archive, restore]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("environments")

    @admin.display(description="adapters")
    def adapters(self, obj):
        return ", ".join(obj.deployment_adapters)

    @admin.display(description="environments")
    def environment_names(self, obj):
        return ", ".join(env.name for env in obj.environments.all())

    @admin.display(boolean=True, ordering="archived_at")
    def archived(self, obj):
        return obj.is_archived


class ChangeWindowForm(DomainModelForm):
    days = forms.TypedMultipleChoiceField(
        coerce=int, choices=list(enumerate(WEEKDAYS, 1)), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ChangeWindow
        fields = ["id", "name", "timezone", "days", "start", "end"]


@admin.register(ChangeWindow)
class ChangeWindowAdmin(DomainAdmin):
    form = ChangeWindowForm
    list_display = ["id", "name", "summary"]
    search_fields = ["id", "name", "timezone"]


def _environment_choices():
    return [(env.pk, f"{env.name} ({env.pk})") for env in Environment.objects.all()]  # in promotion order


class FreezeForm(DomainModelForm):
    env_ids = forms.MultipleChoiceField(
        label="Environments", choices=_environment_choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Freeze
        fields = ["id", "title", "starts_at", "ends_at", "env_ids", "reason"]


@admin.register(Freeze)
class FreezeAdmin(DomainAdmin):
    form = FreezeForm
    list_display = ["id", "title", "starts_at", "ends_at", "environments"]
    search_fields = ["id", "title"]

    @admin.display(description="environments")
    def environments(self, obj):
        return ", ".join(obj.env_ids)
