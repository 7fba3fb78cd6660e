import django_filters as filters

from controlplane.api.filters import BooleanFilter, FilterSet
from releases.models import Release, ReleaseStatus, RunKind, RunState, WorkflowRun


class ReleaseFilterSet(FilterSet):
    serviceId = filters.CharFilter(field_name="service_id")
    envId = filters.CharFilter(field_name="environment_id")
    status = filters.ChoiceFilter(choices=ReleaseStatus.choices)
    sha = filters.CharFilter(lookup_expr="startswith")
    version = filters.CharFilter()
    isCurrent = BooleanFilter(field_name="is_current", label="Only current (true) or only not current (false)")

    class Meta:
        model = Release
        fields = ["serviceId", "envId", "status", "sha", "version", "isCurrent"]


class WorkflowRunFilterSet(FilterSet):
    releaseId = filters.CharFilter(field_name="release_id")
    serviceId = filters.CharFilter(field_name="release__service_id")
    envId = filters.CharFilter(field_name="release__environment_id")
    kind = filters.ChoiceFilter(choices=RunKind.choices)
    state = filters.ChoiceFilter(choices=RunState.choices)
    actor = filters.CharFilter()

    class Meta:
        model = WorkflowRun
        fields = ["releaseId", "serviceId", "envId", "kind", "state", "actor"]
