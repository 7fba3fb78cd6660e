import pytest

from controlplane.lifecycle import TransitionRefused
from incidents import lifecycle
from incidents.models import Incident
from services import lifecycle as service_lifecycle
from tests.conftest import refused


@pytest.fixture
def incident(make_service):
    def make(**fields):
        fields = {"severity": "high", "link": "https://pagerduty.example.com/incidents/P1", **fields}
        return Incident(service=fields.pop("service", None) or make_service(), **fields)

    return make


def test_incident_is_created_triggered(incident):
    inc = incident()
    inc.save()
    assert inc.id.startswith("inc-") and inc.status == "triggered"


def test_severity_is_one_of_four(incident):
    for severity in ("low", "medium", "high", "critical"):
        incident(severity=severity).save()
    refused(incident(severity="sev1").save, "severity")


@pytest.mark.parametrize("link", ["ftp://example.com/x", "/incidents/1", "javascript:alert(1)", "example.com/x", ""])
def test_link_must_be_an_absolute_http_url(incident, link):
    refused(incident(link=link).save, "link")


def test_status_is_not_set_by_create_or_edit(incident):
    refused(incident(status="resolved").save, "status", "created triggered")
    inc = incident()
    inc.save()
    inc.status = "resolved"
    refused(inc.save, "status", "changes only by acknowledging and resolving")


def test_acknowledge_then_resolve(incident):
    inc = incident()
    inc.save()
    lifecycle.acknowledge(inc)
    assert inc.status == "acknowledged" and inc.acknowledged_at
    lifecycle.resolve(inc)
    assert inc.status == "resolved" and inc.resolved_at >= inc.acknowledged_at


def test_resolve_straight_from_triggered(incident):
    inc = incident()
    inc.save()
    lifecycle.resolve(inc)
    assert Incident.objects.get(pk=inc.pk).status == "resolved"


def test_resolved_is_final(incident):
    inc = incident()
    inc.save()
    lifecycle.resolve(inc)
    with pytest.raises(TransitionRefused, match="is resolved: it cannot move to acknowledged; it is final"):
        lifecycle.acknowledge(inc)


def test_no_new_incidents_on_archived_services(incident, make_service):
    svc = make_service()
    service_lifecycle.archive(svc)
    refused(incident(service=svc).save, "service", "archived")
