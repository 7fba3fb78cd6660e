import datetime as dt

import pytest

from audit.models import AuditEvent
from controlplane.errors import Conflict
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


@pytest.mark.parametrize("field", ["acknowledged_at", "resolved_at"])
def test_the_moves_times_are_never_edited(incident, field):
    """save() never writes what a move stamps, so an edit of it would be audited yet never stored."""
    inc = incident()
    inc.save()
    lifecycle.acknowledge(inc)
    lifecycle.resolve(inc)
    stamped = getattr(inc, field)
    events = AuditEvent.objects.count()
    setattr(inc, field, stamped - dt.timedelta(hours=1))
    refused(inc.save, field, "is set by acknowledging and resolving, never by editing the incident.")
    assert getattr(Incident.objects.get(pk=inc.pk), field) == stamped
    assert AuditEvent.objects.count() == events  # no event for a change that was never made
    refused(incident(**{field: stamped}).save, field, "is set by acknowledging and resolving")


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


def test_editing_a_copy_read_before_acknowledging_is_a_conflict(incident):
    incident = incident()
    incident.save()
    stale = Incident.objects.get(pk=incident.pk)
    lifecycle.acknowledge(incident)
    stale.title = "edited meanwhile"
    with pytest.raises(Conflict, match="is acknowledged now"):
        stale.save()
    stored = Incident.objects.get(pk=incident.pk)
    assert (stored.status, stored.acknowledged_at is not None) == ("acknowledged", True)


# --- secrets: input is refused, never stored (a redacted link would no longer lead anywhere) ---


def test_an_incident_link_with_a_token_parameter_is_refused(incident):
    inc = incident(link="https://pd.example.com/i/1?token=abc123abc123")
    error = refused(
        inc.save,
        "link",
        "must not contain a secret (found a secret-named query parameter); the control plane stores no credentials.",
    )
    assert "abc123abc123" not in str(error)
    assert not Incident.objects.exists()


def test_an_incident_link_with_credentials_is_refused(incident):
    error = refused(incident(link="https://ops:hunter2hunter2@pd.example.com/i/1").save, "link", "credentials in a URL")
    assert "hunter2hunter2" not in str(error)


def test_a_secret_in_an_incident_title_is_refused_on_create_and_on_edit(incident):
    refused(incident(title="leaked AKIAIOSFODNN7EXAMPLE").save, "title", "found an AWS access key id")
    inc = incident(title="db down")
    inc.save()
    inc.title = "db down, see Bearer sekritsekrit123"
    refused(inc.save, "title", "found a bearer token")
    assert Incident.objects.get(pk=inc.pk).title == "db down"


def test_an_incident_link_without_secrets_is_kept_exactly(incident):
    inc = incident(link="https://pd.example.com/i/1?view=full&search=token")
    inc.save()
    assert Incident.objects.get(pk=inc.pk).link == "https://pd.example.com/i/1?view=full&search=token"
