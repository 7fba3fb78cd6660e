import re

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from controlplane.errors import Conflict, DeletionRefused
from services import lifecycle
from services.models import Environment, Service
from tests.conftest import refused


def service(**fields):
    fields = {"name": "Demo", "repo": "github.com/acme/demo", "deployment_adapters": ["aws"], **fields}
    return Service(**fields)


# --- ids ---


def test_id_is_generated_with_the_type_prefix(db):
    svc = service()
    svc.save()
    assert re.fullmatch(r"svc-[a-z0-9]{12}", svc.id)


def test_client_supplied_id_is_kept(db):
    svc = service(id="svc-payments")
    svc.save()
    assert Service.objects.get(pk="svc-payments").name == "Demo"


@pytest.mark.parametrize(
    ("bad_id", "rule"),
    [
        ("env-demo", "must start with 'svc-'"),
        ("svc-Demo", "lower-case letters, digits or dashes"),
        ("svc-demo_1", "lower-case letters, digits or dashes"),
        ("svc-" + "a" * 60, "2-63"),
    ],
)
def test_malformed_id_is_refused(db, bad_id, rule):
    refused(service(id=bad_id).save, "id", rule)
    assert not Service.objects.exists()


def test_id_cannot_change(db):
    svc = service(id="svc-one")
    svc.save()
    svc.id = "svc-two"
    refused(svc.save, "id", "cannot be changed once set (it is 'svc-one')")
    assert list(Service.objects.values_list("pk", flat=True)) == ["svc-one"]


def test_creating_with_a_taken_id_is_refused_not_an_overwrite(db):
    service(id="svc-one", name="First").save()
    refused(service(id="svc-one", name="Second").save, "id", "already exists")
    assert Service.objects.get(pk="svc-one").name == "First"


# --- service fields ---


@pytest.mark.parametrize(
    "given",
    ["https://github.com/blackroad/demo.git", "http://GitHub.com/blackroad/demo/", "github.com/blackroad/demo.git"],
)
def test_repo_is_normalised(db, given):
    svc = service(repo=given)
    svc.save()
    assert svc.repo.lower() == "github.com/blackroad/demo"


@pytest.mark.parametrize("given", ["demo", "github.com/blackroad", "not a url/at/all"])
def test_malformed_repo_is_refused(db, given):
    refused(service(repo=given).save, "repo", "host/owner/name")


@pytest.mark.parametrize(
    "given",
    [
        "https://github.com/a/b/../../etc",
        "github.com/a/../b",
        "github.com/./a/b",
        "github.com/a/b/.",
        "gitlab.com/g/../x/y",
    ],
)
def test_repo_with_dot_segments_is_refused(db, given):
    refused(service(repo=given).save, "repo", "'.' or '..' path segment")
    assert not Service.objects.exists()


def test_dots_inside_repo_names_are_fine(db):
    svc = service(repo="github.com/acme/my.app..v2")
    svc.save()
    assert svc.repo == "github.com/acme/my.app..v2"


def test_unknown_adapter_is_refused_naming_it_and_the_valid_ones(db):
    refused(
        service(deployment_adapters=["aws", "heroku"]).save,
        "deployment_adapters",
        "unknown adapter 'heroku'; valid adapters: aws, fly, gcp, k8s, render.",
    )


@pytest.mark.parametrize(("value", "rule"), [([], "one or more"), (["aws", "aws"], "more than once"), ("aws", "list")])
def test_adapter_list_shape_is_enforced(db, value, rule):
    refused(service(deployment_adapters=value).save, "deployment_adapters", rule)


def test_blank_name_is_refused(db):
    refused(service(name="   ").save, "name", "blank")


# --- environment references ---


def atomically(fn):
    # Django runs m2m signals inside the caller's transaction: a refusal there must not poison it.
    def run():
        with transaction.atomic():
            fn()

    return run


def test_dangling_environment_reference_is_refused_naming_it(make_service):
    svc = make_service()
    refused(
        atomically(lambda: svc.environments.add("env-missing")), "environments", "unknown environment 'env-missing'"
    )
    assert svc.environments.count() == 1


def test_archived_environment_cannot_be_linked(make_service, make_environment):
    svc, env = make_service(), make_environment()
    lifecycle.archive(env)
    refused(atomically(lambda: svc.environments.add(env)), "environments", "is archived")


def test_reverse_link_to_unknown_service_is_refused(make_environment):
    env = make_environment()
    refused(atomically(lambda: env.services.add("svc-missing")), "services", "unknown service 'svc-missing'")


def test_environment_with_releases_stays_linked(make_release):
    release = make_release()
    svc = release.service
    refused(atomically(lambda: svc.environments.remove(release.environment)), "environments", "stays linked")
    refused(atomically(svc.environments.clear), "environments", "stays linked")
    refused(atomically(lambda: svc.environments.set([])), "environments", "stays linked")
    assert list(svc.environments.all()) == [release.environment]


def test_environment_without_releases_can_be_unlinked(make_service):
    svc = make_service()
    svc.environments.clear()
    assert svc.environments.count() == 0


# --- environments ---


@pytest.mark.parametrize("name", ["prod", "production", "prod-eu", "production-us-east"])
def test_production_environment_needs_region_and_cluster(db, name):
    error = refused(Environment(name=name).save, "region", f"required for a production environment ('{name}')")
    assert "cluster" in error.message_dict
    Environment(name=name, region="us-east-1", cluster="main").save()


@pytest.mark.parametrize("name", ["staging", "preprod", "products", "dev"])
def test_other_environments_may_omit_region_and_cluster(db, name):
    env = Environment(name=name)
    env.save()
    assert not env.is_production and env.region == "" and env.cluster == ""


@pytest.mark.parametrize("name", ["Prod", "prod eu", "-prod", "prod_eu"])
def test_environment_name_must_be_a_lower_case_slug(db, name):
    refused(Environment(name=name).save, "name", "lower-case letters")


def test_environment_name_is_unique(make_environment):
    make_environment(name="qa")
    refused(Environment(name="qa").save, "name", "already exists")


@pytest.mark.parametrize("ref", ["policy:incident-gate", "policy:incident-gate:critical", "policy:approval:2"])
def test_well_formed_policy_refs_of_the_catalogue_are_accepted(db, ref):
    # (refs naming windows and environments, and those outside the catalogue: tests/policies/test_gates.py)
    Environment(name="qa", policy_refs=[ref]).save()


@pytest.mark.parametrize("ref", ["change-window", "policy:", "policy:Change", "policy:a::b", "policy:a:b c", 7])
def test_malformed_policy_refs_are_refused(db, ref):
    refused(Environment(name="qa", policy_refs=[ref]).save, "policy_refs", "policy:<kind>[:<arg>...]")


# --- archive, never delete ---


def test_services_and_environments_are_never_deleted(make_service):
    svc = make_service()
    env = svc.environments.get()
    for attempt in (svc.delete, env.delete, Service.objects.all().delete, Environment.objects.all().delete):
        with pytest.raises(DeletionRefused):
            attempt()
    assert Service.objects.filter(pk=svc.pk).exists() and Environment.objects.filter(pk=env.pk).exists()


def test_archive_and_restore(make_service):
    svc = make_service()
    lifecycle.archive(svc)
    assert Service.objects.get(pk=svc.pk).is_archived
    with pytest.raises(Conflict, match="already archived"):
        lifecycle.archive(svc)
    svc.name = "Renamed"
    refused(svc.save, contains="archived; restore it before changing it")
    lifecycle.restore(svc)
    svc.name = "Renamed"
    svc.save()
    assert Service.objects.get(pk=svc.pk).name == "Renamed"


def test_archived_id_stays_taken(make_service):
    svc = make_service(id="svc-old")
    lifecycle.archive(svc)
    with pytest.raises(ValidationError):
        service(id="svc-old").save()


# --- secrets: input is refused, never stored ---


@pytest.mark.parametrize(
    ("repo", "secret"),
    [
        ("https://user:hunter2hunter2@github.com/acme/demo", "hunter2hunter2"),
        ("https://ghp_abcdefabcdef@github.com/acme/demo.git", "ghp_abcdefabcdef"),
        ("ssh://git@github.com/acme/demo.git", None),  # a user name is credentials in a URL too
    ],
)
def test_a_repo_with_credentials_in_its_url_is_refused_not_stripped(db, repo, secret):
    error = refused(
        service(repo=repo).save,
        "repo",
        "must not contain a secret (found credentials in a URL); the control plane stores no credentials.",
    )
    assert secret is None or secret not in str(error)
    assert not Service.objects.exists()


def test_a_repo_with_a_user_before_the_host_is_refused(db):
    error = refused(service(repo="deploy:hunter2hunter2@github.com/acme/demo").save, "repo", "must not name a user")
    assert "hunter2hunter2" not in str(error)


def test_a_configured_secret_in_a_service_name_is_refused(db):
    from tests.conftest import TOKENS

    error = refused(service(name=f"Demo {TOKENS['admin']}").save, "name", "found a configured secret")
    assert TOKENS["admin"] not in str(error)


def test_a_rename_with_a_secret_is_refused_and_the_name_kept(db):
    svc = service(name="Demo")
    svc.save()
    svc.name = "Demo AKIAIOSFODNN7EXAMPLE"
    refused(svc.save, "name", "found an AWS access key id")
    assert Service.objects.get(pk=svc.pk).name == "Demo"


def test_secrets_in_json_fields_are_refused_values_and_keys(db):
    refused(service(deployment_adapters=["aws", "Bearer sekritsekrit123"]).save, "deployment_adapters", "bearer token")
    env = Environment(name="qa", policy_refs=[{"password": "hunter2"}])
    refused(env.save, "policy_refs", "found a value under a secret-named key")
    refused(Environment(name="qa", cluster="eks Bearer sekritsekrit123").save, "cluster", "found a bearer token")
    assert not Environment.objects.exists()
