import django_filters as filters
from django.db.models import Q

from controlplane import adapters
from controlplane.api.filters import FilterSet, lookups
from controlplane.models import ID_PATTERN
from services.models import ChangeWindow, Environment, Freeze, Service


class ArchivedFilterSet(FilterSet):
    """Lists show what is in use unless `archived=true` (only archived) or `archived=all` is asked."""

    archived = filters.ChoiceFilter(
        choices=[("false", "false"), ("true", "true"), ("all", "all")], method="filter_archived", empty_label=None
    )

    def __init__(self, data=None, *args, **kwargs):
        data = data.copy() if data is not None else {}
        data.setdefault("archived", "false")
        super().__init__(data, *args, **kwargs)

    def plain_archived(self, value) -> list:
        return [] if value == "all" else [("archived_at", "isnull", value == "false")]

    def filter_archived(self, queryset, name, value):
        return queryset.filter(**lookups(self.plain_archived(value)))


class EnvironmentFilterSet(ArchivedFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    region = filters.CharFilter()
    cluster = filters.CharFilter()

    class Meta:
        model = Environment
        fields = ["name", "region", "cluster", "archived"]


class ServiceFilterSet(ArchivedFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    q = filters.CharFilter(method="search", label="Search id, name and repo")
    adapter = filters.ChoiceFilter(choices=[(n, n) for n in adapters.names()], method="filter_adapter")
    envId = filters.CharFilter(field_name="environments__id", label="Services linked to this environment")

    class Meta:
        model = Service
        fields = ["name", "q", "adapter", "envId", "archived"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(id__icontains=value) | Q(name__icontains=value) | Q(repo__icontains=value))

    def filter_adapter(self, queryset, name, value):
        # The adapters are a JSON list; its text holds each name in quotes. (The value is from the registry.)
        return queryset.filter(deployment_adapters__icontains=f'"{value}"')


class ChangeWindowFilterSet(FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = ChangeWindow
        fields = ["name"]


class FreezeFilterSet(FilterSet):
    envId = filters.CharFilter(method="filter_environment", label="Freezes of this environment")

    class Meta:
        model = Freeze
        fields = ["envId"]

    def filter_environment(self, queryset, name, value):
        if not ID_PATTERN.fullmatch(value):
            return queryset.none()  # not an id: no freeze names it
        # The ids are a JSON list; its text holds each in quotes.
        return queryset.filter(env_ids__icontains=f'"{value}"')
