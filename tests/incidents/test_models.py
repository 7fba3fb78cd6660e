import datetime as dt

import pytest
import time_machine

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


@pytest.mark.parametrize(
    ("link", "write"),
    [
        ('https://pd.example.com/i/"1"', "write '\"' percent-encoded, as %22."),
        ("https://pd.example.com/i/<script>", "write '<' percent-encoded, as %3C."),
        ("https://pd.example.com/i/a|b", "write '|' percent-encoded, as %7C."),
        ("https://pd.example.com/i/{1}", "write '{' percent-encoded, as %7B."),
        ("https://pd.example.com/i/a\\b", "write '\\' percent-encoded, as %5C."),
        ("https://pd.example.com/i/100%", "write '%' percent-encoded, as %25."),
        ("https://pd.example.com/i/%zz", "write '%' percent-encoded, as %25."),
        ("https://pd.example.com/i/a\x01", "write U+0001 percent-encoded, as %01."),
    ],
)
def test_a_link_holds_only_url_characters(incident, link, write):
    refused(incident(link=link).save, "link", f"must be an absolute http(s) URL to the source system; {write}")


@pytest.mark.parametrize(
    "link", ["https://pd.example.com/i/%22quoted%22?q=a%20b#top", "https://pd.example.com/i/m\u00fcnchen"]
)
def test_percent_encoded_and_international_links_are_taken(incident, link):
    incident(link=link).save()
    assert Incident.objects.get().link == link


NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("started_at", "taken"),
    [
        (NOW + dt.timedelta(minutes=5), True),
        (NOW + dt.timedelta(minutes=5, seconds=1), False),
        ((NOW + dt.timedelta(minutes=5)).astimezone(PLUS_TWO), True),  # 14:05+02:00 is 12:05 UTC
        ((NOW + dt.timedelta(minutes=5, seconds=1)).astimezone(PLUS_TWO), False),
        (dt.datetime(2999, 1, 1, tzinfo=dt.UTC), False),
        (NOW - dt.timedelta(days=365), True),
    ],
)
def test_an_incident_starts_at_most_five_minutes_ahead_of_the_clock(incident, started_at, taken):
    with time_machine.travel(NOW, tick=False):
        inc = incident(started_at=started_at)
        if taken:
            inc.save()
            assert Incident.objects.get().started_at == started_at
        else:
            refused(inc.save, "started_at", "may be at most 5 minutes ahead of the server's clock.")
            assert not Incident.objects.exists()


def test_the_clock_is_read_in_utc_whatever_the_servers_time_zone(incident, settings):
    settings.TIME_ZONE = "America/Los_Angeles"  # 04:00 there when it is 12:00 UTC
    with time_machine.travel(NOW, tick=False):
        incident(started_at=dt.datetime(2026, 3, 1, 4, 4, tzinfo=dt.timezone(dt.timedelta(hours=-8)))).save()
        refused(
            incident(started_at=dt.datetime(2026, 3, 1, 4, 6, tzinfo=dt.timezone(dt.timedelta(hours=-8)))).save,
            "started_at",
        )


def test_the_start_rule_is_for_new_incidents_a_stored_one_stays_editable(incident):
    with time_machine.travel(NOW, tick=False):
        inc = incident(started_at=NOW + dt.timedelta(minutes=4))
        inc.save()
    with time_machine.travel(NOW - dt.timedelta(hours=1), tick=False):  # the clock went back an hour
        inc.title = "renamed"
        inc.save()
    assert Incident.objects.get().title == "renamed"


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
