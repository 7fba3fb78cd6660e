import django_filters as filters

from controlplane.api.filters import BooleanFilter, FilterSet
from incidents.models import OPEN, Incident, IncidentSource, IncidentStatus, Severity


class IncidentFilterSet(FilterSet):
    serviceId = filters.CharFilter(field_name="service_id")
    severity = filters.ChoiceFilter(choices=Severity.choices)
    status = filters.ChoiceFilter(choices=IncidentStatus.choices)
    source = filters.ChoiceFilter(choices=IncidentSource.choices)
    open = BooleanFilter(method="filter_open", label="Only open (true) or only resolved (false)")

    class Meta:
        model = Incident
        fields = ["serviceId", "severity", "status", "source", "open"]

    def filter_open(self, queryset, name, value):
        return queryset.filter(OPEN) if value else queryset.exclude(OPEN)
