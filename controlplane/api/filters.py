from datetime import UTC

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An RFC 3339 time, converted to UTC here: databases take a narrower range of offsets than the
    standard allows (PostgreSQL refuses +23:59), and a conversion past year 9999 is an input error."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("is out of range once converted to UTC.", code="invalid") from None


class TimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField
