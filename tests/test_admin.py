"""The admin: every page renders, every rule shows as a form error, history cannot be edited or deleted."""

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.models import AuditEvent
from controlplane import connections
from incidents.models import Incident
from releases.models import Observation, Release
from services.models import ChangeWindow, Environment, Freeze, Service
from tests.conftest import loaded_once, sign_in


def an_ended_freeze_and_a_drift_check():
    # The demo has no freeze nor drift check: one of each, so that every model has an object to show.
    Freeze(title="Past", starts_at="2024-01-01T00:00:00Z", ends_at="2024-01-02T00:00:00Z", env_ids=["env-prod"]).save()
    Observation.objects.create(
        service_id="svc-demo",
        environment_id="env-prod",
        adapter="aws",
        connection="ecs-prod",
        expected="github.com/blackroad/demo:9f3b7de",
        running="github.com/blackroad/demo:0000000",
        drifted=True,
    )


demo = loaded_once("demo", an_ended_freeze_and_a_drift_check)  # once for the module; each test's writes roll back to it


@pytest.fixture
def staff(client, db):
    return sign_in(client, "admin")


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


DOMAIN_MODELS = [m for m in admin.site._registry if m._meta.app_label in {"services", "releases", "incidents", "audit"}]


def test_every_domain_model_has_an_admin():
    assert len(DOMAIN_MODELS) == 10


@pytest.mark.parametrize("model", DOMAIN_MODELS, ids=lambda m: m._meta.label)
def test_every_list_and_change_page_renders(staff, model):
    assert staff.get(admin_url(model, "changelist")).status_code == 200
    obj = model.objects.first()
    assert obj is not None, f"demo data has no {model._meta.label}"
    assert staff.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize(
    "model", [Environment, Service, Release, Incident, ChangeWindow, Freeze], ids=lambda m: m._meta.label
)
def test_add_pages_render(staff, model):
    assert staff.get(admin_url(model, "add")).status_code == 200


def test_history_cannot_be_added_or_edited_here(staff):
    event = AuditEvent.objects.get(seq=1)
    assert staff.get(admin_url(AuditEvent, "add")).status_code == 403
    response = staff.post(admin_url(AuditEvent, "change", event.seq), {"actor": "mallory"})
    assert response.status_code == 403
    assert AuditEvent.objects.get(seq=1).actor == "alice@blackroad.io"


@pytest.mark.parametrize(
    "model", [Service, Environment, Release, Incident, AuditEvent, ChangeWindow, Freeze], ids=lambda m: m._meta.label
)
def test_nothing_can_be_deleted(staff, model):
    obj = model.objects.first()
    assert staff.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_production_environment_without_region_is_a_form_error(staff):
    response = staff.post(admin_url(Environment, "add"), {"name": "production-eu", "region": "", "cluster": ""})
    assert response.status_code == 200
    assert "is required for a production environment" in response.content.decode()
    assert not Environment.objects.filter(name="production-eu").exists()


def test_malformed_policy_ref_is_a_form_error(staff):
    response = staff.post(
        admin_url(Environment, "add"), {"name": "qa", "policy_refs": "policy:incident-gate\nnot-a-policy"}
    )
    assert response.status_code == 200
    assert "&#x27;not-a-policy&#x27; is not of the form" in response.content.decode()


def test_environment_created_from_the_admin(staff):
    response = staff.post(
        admin_url(Environment, "add"), {"name": "qa", "policy_refs": "policy:incident-gate:critical\n"}
    )
    assert response.status_code == 302
    assert Environment.objects.get(name="qa").policy_refs == ["policy:incident-gate:critical"]


def test_release_in_an_unlinked_environment_is_a_form_error(staff):
    Environment(id="env-qa", name="qa").save()
    form = {"service": "svc-demo", "environment": "env-qa", "sha": "abcdef1", "version": "2"}
    response = staff.post(admin_url(Release, "add"), form)
    assert response.status_code == 200
    assert "is not linked to service" in response.content.decode()
    assert Release.objects.count() == 1


def test_release_created_from_the_admin_is_draft(staff):
    form = {"service": "svc-demo", "environment": "env-prod", "sha": "abcdef1", "version": "2"}
    assert staff.post(admin_url(Release, "add"), form).status_code == 302
    assert Release.objects.get(sha="abcdef1").status == "Draft"


def test_unlinking_an_environment_with_releases_is_a_form_error(staff):
    form = {
        "name": "Demo Service",
        "repo": "github.com/blackroad/demo",
        "deployment_adapters": ["aws"],
        "environments": ["env-prod"],
    }
    response = staff.post(admin_url(Service, "change", "svc-demo"), form)
    assert response.status_code == 200
    assert "stays linked" in response.content.decode()
    assert Service.objects.get(pk="svc-demo").environments.count() == 2


def test_unknown_adapter_cannot_be_chosen(staff):
    form = {"name": "X", "repo": "github.com/a/b", "deployment_adapters": ["heroku"], "environments": ["env-prod"]}
    response = staff.post(admin_url(Service, "add"), form)
    assert response.status_code == 200
    assert "heroku is not one of the available choices" in response.content.decode()


def test_immutable_fields_are_read_only_once_saved(staff):
    page = staff.get(admin_url(Release, "change", "rel-123")).content.decode()
    assert 'name="sha"' not in page and "9f3b7de" in page


def test_archive_action(staff):
    response = staff.post(
        admin_url(Environment, "changelist"), {"action": "archive", "_selected_action": ["env-staging"]}
    )
    assert response.status_code == 302
    assert Environment.objects.get(pk="env-staging").is_archived


def test_incident_lifecycle_actions_report_refusals(staff):
    url = admin_url(Incident, "changelist")
    staff.post(url, {"action": "resolve", "_selected_action": ["inc-789"]})
    assert Incident.objects.get(pk="inc-789").status == "resolved"
    response = staff.post(url, {"action": "acknowledge", "_selected_action": ["inc-789"]}, follow=True)
    assert "is resolved: it cannot move to acknowledged" in response.content.decode()


def test_deploy_from_the_admin_starts_a_run_as_the_signed_in_admin(staff):
    from releases.models import WorkflowRun

    # In staging: prod is reached only by promotion from staging (the demo's policy:requires:env-staging).
    draft = Release(service_id="svc-demo", environment_id="env-staging", sha="abcdef1", version="7")
    draft.save()
    url = admin_url(Release, "changelist")
    staff.post(url, {"action": "deploy", "_selected_action": [draft.pk]})
    run = WorkflowRun.objects.get(release=draft)
    assert (run.kind, run.actor, Release.objects.get(pk=draft.pk).status) == ("Deploy", "dev-admin", "Promoting")
    response = staff.post(url, {"action": "deploy", "_selected_action": ["rel-123"]}, follow=True)
    assert "is Active: it cannot move to Promoting" in response.content.decode()


def test_a_secret_typed_into_a_field_is_a_form_error_and_nothing_is_saved(staff):
    form = {
        "name": "Leaky",
        "repo": "https://deploy:hunter2hunter2@github.com/acme/leaky",
        "deployment_adapters": ["aws"],
        "environments": ["env-prod"],
    }
    response = staff.post(admin_url(Service, "add"), form)
    assert response.status_code == 200
    assert "must not contain a secret (found credentials in a URL)" in response.content.decode()
    assert not Service.objects.filter(name="Leaky").exists()


def test_a_change_window_created_from_the_admin_is_audited(staff):
    form = {"name": "nights", "timezone": "Asia/Kolkata", "days": ["7", "5", "6"], "start": "22:00", "end": "06:00"}
    assert staff.post(admin_url(ChangeWindow, "add"), form).status_code == 302
    window = ChangeWindow.objects.get(name="nights")
    assert window.days == [5, 6, 7] and window.summary == "Fri\u2013Sun 22:00\u201306:00 Asia/Kolkata"
    event = AuditEvent.objects.get(action="changewindow.create")
    assert (event.actor, event.subject_id) == ("dev-admin", window.pk)


def test_a_window_in_an_unknown_zone_is_a_form_error(staff):
    form = {"name": "nights", "timezone": "Mars/Olympus", "days": ["1"], "start": "22:00", "end": "06:00"}
    response = staff.post(admin_url(ChangeWindow, "add"), form)
    assert response.status_code == 200
    assert "&#x27;Mars/Olympus&#x27; is not an IANA time zone name" in response.content.decode()
    assert not ChangeWindow.objects.filter(name="nights").exists()


def test_renaming_a_window_an_environment_names_is_a_form_error(staff):
    form = {"name": "workday", "timezone": "Europe/Berlin", "days": ["1", "2"], "start": "09:00", "end": "17:00"}
    response = staff.post(admin_url(ChangeWindow, "change", "cw-weekday"), form)
    assert response.status_code == 200
    assert "is named by the policy refs of env-prod" in response.content.decode()
    assert ChangeWindow.objects.get(pk="cw-weekday").name == "weekday"


def test_a_freeze_created_from_the_admin_names_its_environments(staff):
    form = {
        "title": "Year end",
        "starts_at_0": "2026-12-20",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2026-12-19",
        "ends_at_1": "00:00:00",
        "env_ids": ["env-prod"],
    }
    response = staff.post(admin_url(Freeze, "add"), form)
    assert response.status_code == 200 and "must be after startsAt" in response.content.decode()
    assert staff.post(admin_url(Freeze, "add"), {**form, "ends_at_0": "2027-01-04"}).status_code == 302
    assert Freeze.objects.get(title="Year end").env_ids == ["env-prod"]
    assert AuditEvent.objects.filter(action="freeze.create", actor="dev-admin").count() == 1


def test_a_runs_page_shows_its_approvals_and_a_releases_page_what_it_restores(staff):
    from releases.models import RunApproval, WorkflowRun

    draft = Release(service_id="svc-demo", environment_id="env-staging", sha="abcdef1", version="7")
    draft.save()
    run = WorkflowRun(kind="Deploy", release=draft, actor="alice", state="AwaitingApproval", approvals_required=2)
    run.save()
    RunApproval(run=run, actor="bob", decision="approve", comment="looks right to me").save()
    page = staff.get(admin_url(WorkflowRun, "change", run.pk)).content.decode()
    assert "looks right to me" in page and "Awaiting Approval" in page  # the state's label
    assert 'name="approvals-0-comment"' not in page  # read-only: nothing to edit or add
    restored = Release(
        service_id="svc-demo", environment_id="env-staging", sha="9f3b7de", version="6", restores_id="rel-123"
    )
    restored.save()
    assert "rel-123" in staff.get(admin_url(Release, "change", restored.pk)).content.decode()


CONNECTIONS = {
    "k8s-prod": {"adapter": "k8s", "kubeconfig": "/etc/cp/kubeconfig", "context": "prod"},
    "ecs-prod": {"adapter": "aws", "region": "eu-west-1", "cluster": "prod"},
}


def test_an_environments_connection_is_chosen_from_those_configured(staff, settings):
    settings.CONTROLPLANE_CONNECTIONS = connections.parse(CONNECTIONS)
    page = staff.get(admin_url(Environment, "change", "env-staging")).content.decode()
    assert 'name="connection"' in page
    assert "Configured: ecs-prod (aws: region eu-west-1, cluster prod), k8s-prod (k8s: context prod)." in page

    form = {"name": "staging", "region": "", "cluster": "", "policy_refs": "", "connection": "k8s-nope"}
    refused = staff.post(admin_url(Environment, "change", "env-staging"), form)
    assert refused.status_code == 200
    assert "unknown connection &#x27;k8s-nope&#x27;; configured: ecs-prod, k8s-prod." in refused.content.decode()
    assert Environment.objects.get(pk="env-staging").connection == ""

    assert (
        staff.post(admin_url(Environment, "change", "env-staging"), form | {"connection": "k8s-prod"}).status_code
        == 302
    )
    assert Environment.objects.get(pk="env-staging").mode == "live"
    listed = staff.get(admin_url(Environment, "changelist")).content.decode()
    assert "k8s-prod" in listed and "live" in listed


def test_with_no_connection_configured_the_help_says_so(staff, settings):
    settings.CONTROLPLANE_CONNECTIONS = {}
    page = staff.get(admin_url(Environment, "add")).content.decode()
    assert "Empty: every adapter simulates. Configured: none." in page


def test_drift_observations_are_listed_and_never_written_here(staff):
    observation = Observation.objects.get()
    listed = staff.get(admin_url(Observation, "changelist")).content.decode()
    for shown in (
        "svc-demo",
        "env-prod",
        "aws",
        "github.com/blackroad/demo:0000000",
        "github.com/blackroad/demo:9f3b7de",
    ):
        assert shown in listed
    assert staff.get(admin_url(Observation, "add")).status_code == 403
    response = staff.post(admin_url(Observation, "change", observation.pk), {"drifted": ""})
    assert response.status_code == 403
    assert staff.post(admin_url(Observation, "delete", observation.pk), {"post": "yes"}).status_code == 403
    assert Observation.objects.get().drifted


def test_the_admin_wears_the_dashboards_header_and_offers_no_password_users(staff):
    page = staff.get(reverse("admin:index")).content.decode()
    assert '<a href="/">Control plane</a>' in page  # the brand leads back to the services
    assert '<nav class="dashboard" aria-label="Dashboard">' in page and 'href="/incidents/"' in page
    assert "controlplane/favicon.svg" in page
    # Nobody signs in with a password (OIDC and tokens): no Users or Groups to edit.
    assert "/admin/auth/user/" not in page and "/admin/auth/group/" not in page
    assert staff.get("/admin/auth/user/").status_code == 404
