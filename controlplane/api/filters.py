import django_filters as filters
from django import forms

from controlplane.timestamps import parse_rfc3339


class RFC3339Field(forms.Field):
    """An RFC 3339 time with an offset, converted to UTC here (databases take a narrower range of offsets
    than the standard allows: PostgreSQL refuses +23:59). The same parser as the API's Timestamp field."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            # A query string reads an unencoded "+" as a space: "…T00:00:00+02:00" arrives as "…T00:00:00 02:00".
            hint = " In a query string, write + as %2B." if " " in value else ""
            # As a parameter: django-filter formats messages with %, and this one holds "%2B".
            raise forms.ValidationError("%(rule)s", code="invalid", params={"rule": f"{exc}{hint}"}) from None


class TimeFilter(filters.IsoDateTimeFilter):
    field_class = RFC3339Field


class StrictBooleanField(forms.Field):
    """`true` or `false`, nothing else (django-filter's own reads `maybe` as "no filter")."""

    VALUES = {"true": True, "false": False}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value not in self.VALUES:
            raise forms.ValidationError("must be true or false.", code="invalid")
        return self.VALUES[value]


class BooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet with its form class built once per filterset class: django-filter builds it
    on every request (each filter's form field, its label worked out from the model), which cost a filtered
    list more than its query. None of the filters' form fields depends on the request; each request still
    gets its own form and its own copy of the filters."""

    def get_form_class(self):
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._form_class = form_class
        return form_class
