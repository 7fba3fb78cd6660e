"""Freezes, incident gates and promotion order, decided at frozen instants; the ref catalogue refused on save."""

from datetime import timedelta

import pytest
import time_machine

from controlplane.governance import PolicyDenied
from controlplane.timestamps import rfc3339
from incidents import lifecycle as incident_lifecycle
from incidents.models import Incident
from policies import gate
from releases import lifecycle
from services.models import Environment, Freeze
from tests.conftest import refused
from tests.policies.conftest import decide_at, instant

# --- freezes ---


@pytest.fixture
def freeze(db):
    def make(environments, starts_at, ends_at, title="Year-end freeze"):
        f = Freeze(
            title=title,
            starts_at=instant(starts_at),
            ends_at=instant(ends_at),
            env_ids=[e.pk for e in environments],
            reason="the shops' busiest week",
        )
        f.save()
        return f

    return make


def test_a_running_freeze_refuses_until_it_ends(make_environment, freeze):
    env, other = make_environment(), make_environment()
    f = freeze([env], "2026-12-20T00:00:00Z", "2027-01-04T06:00:00Z")
    assert decide_at("2026-12-19T23:59:59Z", env).allowed
    decision = decide_at("2026-12-20T00:00:00Z", env)
    assert decision.as_json() == {
        "allowed": False,
        "deniedBy": [
            {
                "policy": f"freeze:{f.pk}",
                "reason": f"frozen by {f.pk} (Year-end freeze) until 2027-01-04T06:00:00Z",
            }
        ],
        "nextAllowedAt": "2027-01-04T06:00:00Z",
    }
    assert decide_at("2027-01-04T05:59:59Z", env).as_json()["nextAllowedAt"] == "2027-01-04T06:00:00Z"
    assert decide_at("2027-01-04T06:00:00Z", env).allowed  # the end is not frozen
    assert decide_at("2026-12-24T12:00:00Z", other).allowed  # only the environments it names


def test_a_freeze_lets_rollbacks_through(make_environment, freeze):
    env = make_environment()
    freeze([env], "2026-12-20T00:00:00Z", "2027-01-04T06:00:00Z")
    assert not decide_at("2026-12-24T12:00:00Z", env, action="promote").allowed
    assert decide_at("2026-12-24T12:00:00Z", env, action="rollback").allowed


@pytest.mark.parametrize(
    "ends_at, opens",
    [
        ("2027-01-02T10:00:00Z", "2027-01-04T08:00:00Z"),  # ends on a Saturday: Monday 09:00 Berlin
        ("2026-12-30T19:00:00Z", "2026-12-31T08:00:00Z"),  # ends Wednesday 20:00 Berlin: Thursday 09:00
        ("2026-12-30T10:00:00Z", "2026-12-30T10:00:00Z"),  # ends inside the window: at its end
    ],
)
def test_a_freeze_ending_while_the_window_is_closed_opens_with_the_window(gated, freeze, ends_at, opens):
    env = gated({"timezone": "Europe/Berlin"})  # Mon-Fri 09:00-17:00
    freeze([env], "2026-12-20T00:00:00Z", ends_at)
    decision = decide_at("2026-12-22T10:00:00Z", env)  # a Tuesday, inside the window, frozen
    assert [d["policy"] for d in decision.as_json()["deniedBy"]] == [f"freeze:{Freeze.objects.get().pk}"]
    assert decision.as_json()["nextAllowedAt"] == opens
    assert decide_at(opens, env).allowed


def test_a_freeze_and_a_closed_window_are_both_named(gated, freeze):
    env = gated({"timezone": "Europe/Berlin"})
    f = freeze([env], "2026-12-20T00:00:00Z", "2027-01-04T06:00:00Z")
    decision = decide_at("2026-12-27T12:00:00Z", env)  # a Sunday
    assert {d["policy"] for d in decision.as_json()["deniedBy"]} == {
        f"freeze:{f.pk}",
        env.policy_refs[0],
    }
    assert decision.as_json()["nextAllowedAt"] == "2027-01-04T08:00:00Z"


# --- incident gates ---


@pytest.fixture
def incident(db):
    def make(service, severity):
        inc = Incident(service=service, severity=severity, title="checkout down", link="https://pd.example.com/P1")
        inc.save()
        return inc

    return make


def test_an_open_critical_incident_closes_the_gate_until_it_is_resolved(make_environment, make_service, incident):
    env = make_environment(policy_refs=["policy:incident-gate:critical"])
    service = make_service(environments=[env])
    inc = incident(service, "critical")
    decision = decide_at("2026-12-07T10:00:00Z", env, service_id=service.pk)
    assert decision.as_json() == {
        "allowed": False,
        "deniedBy": [
            {
                "policy": "policy:incident-gate:critical",
                "reason": f"{service.pk} has an open critical incident ({inc.pk}); the gate refuses critical and above",
            }
        ],
        "nextAllowedAt": None,  # no time alone opens it
    }
    assert "No time alone allows it." in decision.sentence
    incident_lifecycle.acknowledge(inc)
    assert not decide_at("2026-12-07T10:00:00Z", env, service_id=service.pk).allowed  # acknowledged is open
    incident_lifecycle.resolve(inc)
    assert decide_at("2026-12-07T10:00:00Z", env, service_id=service.pk).allowed


def test_the_gate_counts_only_the_services_own_incidents_at_its_severity(make_environment, make_service, incident):
    env = make_environment(policy_refs=["policy:incident-gate:critical"])
    service, neighbour = make_service(environments=[env]), make_service(environments=[env])
    incident(service, "high")  # below the gate's severity
    incident(neighbour, "critical")  # another service's
    assert decide_at("2026-12-07T10:00:00Z", env, service_id=service.pk).allowed


@pytest.mark.parametrize("severity, is_allowed", [("medium", True), ("high", False), ("critical", False)])
def test_the_default_severity_is_high(make_environment, make_service, incident, severity, is_allowed):
    env = make_environment(policy_refs=["policy:incident-gate"])
    service = make_service(environments=[env])
    incident(service, severity)
    assert decide_at("2026-12-07T10:00:00Z", env, service_id=service.pk).allowed is is_allowed


# --- promotion order: policy:requires ---


@pytest.fixture
def staging_and_prod(make_environment, make_service):
    """env staging, env prod (`policy:requires:<staging>:2h`), a service linked to both."""
    staging = make_environment()
    prod = make_environment(policy_refs=[f"policy:requires:{staging.pk}:2h"])
    return staging, prod, make_service(environments=[staging, prod])


def test_a_release_created_in_the_environment_itself_is_refused(staging_and_prod, make_release):
    staging, prod, service = staging_and_prod
    release = make_release(service=service, environment=prod)
    decision = decide_at("2026-12-07T10:00:00Z", prod, service_id=service.pk, release=release)
    assert decision.as_json() == {
        "allowed": False,
        "deniedBy": [
            {
                "policy": f"policy:requires:{staging.pk}:2h",
                "reason": f"{prod.pk} is reached only by promotion from a release Active in {staging.pk} "
                f"(this release was created in {prod.pk})",
            }
        ],
        "nextAllowedAt": None,
    }


def test_a_promotion_waits_for_the_soak_and_then_goes_through(staging_and_prod, make_release):
    staging, prod, service = staging_and_prod
    source = make_release(service=service, environment=staging)
    with time_machine.travel(instant("2026-12-07T09:00:00Z"), tick=False):
        lifecycle.begin_rollout(source)
        lifecycle.activate(source)
    source.refresh_from_db()
    assert rfc3339(source.activated_at) == "2026-12-07T09:00:00Z"

    early = decide_at("2026-12-07T10:00:00Z", prod, action="promote", service_id=service.pk, source=source)
    assert early.as_json() == {
        "allowed": False,
        "deniedBy": [
            {
                "policy": f"policy:requires:{staging.pk}:2h",
                "reason": f"the source release must be Active in {staging.pk} for 2h (until 2026-12-07T11:00:00Z)",
            }
        ],
        "nextAllowedAt": "2026-12-07T11:00:00Z",  # activation + 2h
    }
    assert not decide_at("2026-12-07T10:59:59Z", prod, action="promote", service_id=service.pk, source=source).allowed
    assert decide_at("2026-12-07T11:00:00Z", prod, action="promote", service_id=service.pk, source=source).allowed


def test_a_promotion_from_another_environment_is_refused(staging_and_prod, make_environment, make_release):
    _, prod, service = staging_and_prod
    dev = make_environment()
    service.environments.add(dev)
    source = make_release(service=service, environment=dev)
    with time_machine.travel(instant("2026-12-01T09:00:00Z"), tick=False):
        lifecycle.begin_rollout(source)
        lifecycle.activate(source)
    decision = decide_at("2026-12-07T10:00:00Z", prod, action="promote", service_id=service.pk, source=source)
    assert decision.as_json()["nextAllowedAt"] is None
    assert f"(this release comes from {dev.pk})" in decision.as_json()["deniedBy"][0]["reason"]


def test_a_refusal_through_the_gate_raises_policy_denied_with_the_decision(staging_and_prod, make_release):
    """What deploy and promote call: a 409's PolicyDenied carrying the decision, audited as policy.deny."""
    from audit.models import AuditEvent

    staging, prod, service = staging_and_prod
    release = make_release(service=service, environment=prod)
    with time_machine.travel(instant("2026-12-07T10:00:00Z"), tick=False), pytest.raises(PolicyDenied) as caught:
        gate.gate("deploy", environment=prod, release=release)
    assert caught.value.decision["deniedBy"][0]["policy"] == f"policy:requires:{staging.pk}:2h"
    caught.value.settle()  # (a test runs in a transaction: the event is owed until the caller settles it)
    caught.value.settle()  # once
    [event] = AuditEvent.objects.filter(action="policy.deny")
    assert event.subject_id == release.pk
    assert event.metadata["deniedBy"] == caught.value.decision["deniedBy"]


# --- the catalogue, checked when an environment is saved ---


@pytest.mark.parametrize(
    "ref, says",
    [
        ("policy:approval:0", "takes a number of approvals from 1 to 10"),
        ("policy:approval:11", "takes a number of approvals from 1 to 10"),
        ("policy:approval:two", "takes a number of approvals from 1 to 10"),
        ("policy:two-person", "unknown policy kind 'two-person'; the kinds are change-window, incident-gate"),
        ("policy:change-window:nightly", "unknown change window 'nightly'"),
        ("policy:requires:env-nowhere", "unknown environment 'env-nowhere'"),
        ("policy:requires:env-nowhere:2h", "unknown environment 'env-nowhere'"),
        ("policy:incident-gate:urgent", "takes at most one severity, one of low, medium, high, critical"),
        ("policy:requires:{staging}:2w", "soak '2w' is not a duration like 30m, 2h or 1d"),
    ],
)
def test_refs_outside_the_catalogue_are_refused_naming_them(make_environment, ref, says):
    staging = make_environment()
    ref = ref.format(staging=staging.pk)
    error = refused(Environment(name="qa", policy_refs=[ref]).save, "policy_refs", says)
    assert any(repr(ref) in m for m in error.message_dict["policy_refs"])
    assert not Environment.objects.filter(name="qa").exists()


def test_catalogue_refs_that_name_what_exists_are_accepted(make_environment, window):
    staging = make_environment()
    window(name="weekday")
    refs = [
        "policy:approval:2",
        "policy:change-window:weekday",
        f"policy:requires:{staging.pk}:30m",
        "policy:incident-gate",
    ]
    env = Environment(name="qa", policy_refs=refs)
    env.save()
    assert Environment.objects.get(pk=env.pk).policy_refs == refs


def test_every_bad_ref_of_a_list_is_named(db):
    env = Environment(name="qa", policy_refs=["policy:change-window:nightly", "policy:requires:env-gone"])
    error = refused(env.save, "policy_refs")
    assert error.message_dict["policy_refs"] == [
        "'policy:change-window:nightly': unknown change window 'nightly'.",
        "'policy:requires:env-gone': unknown environment 'env-gone'.",
    ]


def test_soak_is_measured_from_activation_to_the_second(staging_and_prod, make_release):
    staging, prod, service = staging_and_prod
    source = make_release(service=service, environment=staging)
    with time_machine.travel(instant("2026-12-07T09:00:30Z"), tick=False):
        lifecycle.begin_rollout(source)
        lifecycle.activate(source)
    source.refresh_from_db()
    ready = source.activated_at + timedelta(hours=2)
    decision = decide_at("2026-12-07T10:00:00Z", prod, action="promote", service_id=service.pk, source=source)
    assert decision.next_allowed_at == ready and rfc3339(ready) == "2026-12-07T11:00:30Z"
