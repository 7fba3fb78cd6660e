import threading
from collections import OrderedDict

import django_filters as filters
from django import forms
from django.forms.utils import ErrorDict
from django_filters.constants import EMPTY_VALUES

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


def lookups(conditions) -> dict:
    """Conditions (FilterSet.conditions) as the ORM's keyword lookups."""
    return {f"{column}__{lookup}": value for column, lookup, value in conditions}


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


class _Filters(dict):
    """A filterset's filters, which django-filter's FilterSet copies with copy.deepcopy per request."""

    def __deepcopy__(self, memo):
        return {name: _copied(each) for name, each in self.items()}


class _Fields(dict):
    """Its form's fields, which Django's Form copies with copy.deepcopy per form: a field's widget (what a
    deep copy is for) is never rendered here, and cleaning changes nothing of a field."""

    def __deepcopy__(self, memo):
        return {name: _shallow(field) for name, field in self.items()}


def _shallow(each):
    """copy.copy of a filter or a form field (plain objects with a __dict__, no copy hooks of their own), without
    its generic protocol (__reduce_ex__, copyreg), which cost ten times the copy itself."""
    twin = object.__new__(type(each))
    twin.__dict__.update(each.__dict__)
    return twin


def _copied(each: filters.Filter) -> filters.Filter:
    twin = _shallow(each)
    if each.method is not None:
        twin.method = each.method  # a method filter's callable bound to the copy (it finds the method there)
    return twin


class _KeptCleaning:
    """A filterset form's cleaning, kept per query: the same filters given the same values clean to the same
    values (a filter's cleaning reads nothing but its text: no clock, no database), and a list is asked for
    with the same few queries again and again, where cleaning each field cost a page a twentieth of its time.
    Only a valid cleaning is kept (errors are made anew, with their messages); the form is the real one,
    which the pages render."""

    KEPT = 256  # queries per form class

    def full_clean(self):
        key = self._query_key()
        kept = self._kept.get(key) if key is not None else None
        if kept is None:
            super().full_clean()
            if key is not None and self.is_bound and not self._errors:
                with self._lock:
                    self._kept[key] = dict(self.cleaned_data)
                    while len(self._kept) > self.KEPT:
                        self._kept.popitem(last=False)
            return
        self._errors = ErrorDict(renderer=self.renderer)
        self.cleaned_data = dict(kept)

    def _query_key(self):
        """What of the data the form's fields read (each field's own name, or a name that starts with it, as
        a range's widgets do), hashable; None when it is not (the form is then cleaned as usual)."""
        if not self.is_bound:
            return None
        read = getattr(self.data, "lists", None)
        items = read() if read is not None else self.data.items()
        fields = tuple(self.fields)
        try:
            key = tuple(
                sorted(
                    (name, tuple(value) if isinstance(value, list) else value)
                    for name, value in items
                    if name.startswith(fields)
                )
            )
            hash(key)
        except TypeError:
            return None
        return key


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet with its form class built once per filterset class: django-filter builds it
    on every request (each filter's form field, its label worked out from the model), which cost a filtered
    list more than its query. None of the filters' form fields depends on the request; each request still
    gets its own form and its own copy of the filters and of the form's fields: shallow ones, where
    django-filter and Django deep-copy each (a sixth of a list's time), since a filter's only per-request state
    is what is set on the copy (its filterset, its model), and a field's is none."""

    def __init__(self, data=None, queryset=None, **kwargs):
        cls = type(self)
        if type(cls.__dict__.get("base_filters")) is not _Filters:
            cls.base_filters = _Filters(cls.base_filters)
        super().__init__(data, queryset, **kwargs)

    def conditions(self) -> list[tuple[str, str, object]] | None:
        """`(column, lookup, value)` for each filter given, when each compares a column of the list's own
        model (controlplane.plain_lists); None when one asks for more (a join, a method with no `plain_`
        twin, an exclusion).
        The filters must be valid."""
        found = []
        for name, value in self.form.cleaned_data.items():
            each = self.filters[name]
            if value in EMPTY_VALUES:
                continue
            if each.method:  # its rule as conditions, where the filterset says it (`plain_<name>`)
                rule = getattr(self, f"plain_{name}", None)
                if rule is None:
                    return None
                found += rule(value)
                continue
            plain = type(each).filter is filters.Filter.filter or (
                type(each).filter is filters.ChoiceFilter.filter and value != each.null_value
            )
            if not plain or each.distinct or each.exclude or "__" in each.field_name:
                return None
            found.append((each.field_name, each.lookup_expr, value))
        return found

    def get_form_class(self):
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            form_class = type(
                form_class.__name__, (_KeptCleaning, form_class), {"_kept": OrderedDict(), "_lock": threading.Lock()}
            )
            form_class.base_fields = _Fields(form_class.base_fields)
            type(self)._form_class = form_class
        return form_class
