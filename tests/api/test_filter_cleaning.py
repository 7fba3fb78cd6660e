"""A list's filters are cleaned once per query and process (controlplane.api.filters._KeptCleaning): the same
query again reads the values kept, and nothing else is taken for it."""

import pytest
from django import forms
from django.http import QueryDict

from releases.filtersets import ReleaseFilterSet
from releases.models import Release
from services.filtersets import ServiceFilterSet
from services.models import Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def cleanings(monkeypatch):
    counted = []
    clean = forms.Field.clean

    def counting(field, value):
        counted.append(value)
        return clean(field, value)

    monkeypatch.setattr(forms.Field, "clean", counting)
    ServiceFilterSet.get_form_class(ServiceFilterSet(QueryDict(""), Service.objects.all()))._kept.clear()
    ReleaseFilterSet.get_form_class(ReleaseFilterSet(QueryDict(""), Release.objects.all()))._kept.clear()
    return counted


def cleaned(filterset_class, queryset, query: str):
    filterset = filterset_class(QueryDict(query), queryset)
    return filterset.is_valid(), dict(filterset.form.cleaned_data) if filterset.is_valid() else filterset.errors


def test_the_same_query_is_cleaned_once(cleanings):
    first = cleaned(ReleaseFilterSet, Release.objects.all(), "serviceId=svc-a&isCurrent=true&cursor=x")
    fields = len(cleanings)
    assert fields and first[1]["serviceId"] == "svc-a" and first[1]["isCurrent"] is True
    # The same filters on another page (a cursor is not a filter): the values kept.
    assert cleaned(ReleaseFilterSet, Release.objects.all(), "isCurrent=true&serviceId=svc-a&cursor=y") == first
    assert len(cleanings) == fields


def test_other_values_are_cleaned_for_themselves(cleanings):
    assert cleaned(ReleaseFilterSet, Release.objects.all(), "serviceId=svc-a")[1]["serviceId"] == "svc-a"
    assert cleaned(ReleaseFilterSet, Release.objects.all(), "serviceId=svc-b")[1]["serviceId"] == "svc-b"
    # Given twice, the last one counts (as a query string is read), not the one kept for the first alone.
    twice = cleaned(ReleaseFilterSet, Release.objects.all(), "serviceId=svc-a&serviceId=svc-b")
    assert twice[1]["serviceId"] == "svc-b"


def test_a_refused_query_is_refused_every_time(cleanings):
    for _ in range(2):
        valid, errors = cleaned(ServiceFilterSet, Service.objects.all(), "archived=maybe")
        assert not valid and "archived" in errors
    assert cleaned(ServiceFilterSet, Service.objects.all(), "archived=all")[1]["archived"] == "all"
    assert cleaned(ServiceFilterSet, Service.objects.all(), "")[1]["archived"] == "false"  # the default


def test_the_api_answers_a_kept_query_as_a_fresh_one(viewer, cleanings):
    first = viewer.get("/api/services/?archived=all").json()
    assert viewer.get("/api/services/?archived=all").json() == first
    assert viewer.get("/api/services/?archived=maybe").status_code == 400
    assert viewer.get("/api/services/?archived=maybe").status_code == 400
