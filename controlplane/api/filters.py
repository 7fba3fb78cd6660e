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
