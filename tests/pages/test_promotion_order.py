"""Environments in promotion order on every page that lists them, and "Promote to" offering the next one first
(issue 28: environments were alphabetical, so a prod release offered "Promote to staging")."""

import re

import pytest
from django.test import Client

from releases import lifecycle
from releases.models import Release
from services.models import Environment, Service
from tests.conftest import bearer, sign_in

pytestmark = pytest.mark.django_db

PROMOTION_ORDER = ["env-dev", "env-staging", "env-prod"]  # alphabetical: dev, prod, staging


@pytest.fixture
def chain():
    """dev, then staging (requires dev), then prod (requires staging), and svc-s linked to all three, with a
    release Active in each."""
    Environment(id="env-dev", name="dev").save()
    Environment(id="env-staging", name="staging", policy_refs=["policy:requires:env-dev"]).save()
    prod = Environment(
        id="env-prod", name="prod", region="eu", cluster="c1", policy_refs=["policy:requires:env-staging"]
    )
    prod.save()
    service = Service(id="svc-s", name="S", repo="github.com/acme/s", deployment_adapters=["k8s"])
    service.save()
    service.environments.set(["env-prod", "env-staging", "env-dev"])
    releases = {}
    for env in PROMOTION_ORDER:
        release = Release(id=f"rel-{env}", service=service, environment_id=env, sha="abcdef1", version="1.0")
        release.save()
        releases[env] = lifecycle.activate(lifecycle.begin_rollout(release))
    return releases


def environments_in(html: str) -> list[str]:
    """The environments a page links to, each where it first appears."""
    found = re.findall(r'href="/environments/(env-[a-z0-9-]+)/', html)
    return list(dict.fromkeys(found))


@pytest.fixture
def viewer(client):
    return sign_in(client, "viewer")


def test_the_index_columns_and_a_rows_cells_are_in_promotion_order(viewer, chain):
    html = viewer.get("/").content.decode()
    assert environments_in(html) == PROMOTION_ORDER
    header = re.search(r'<tr id="columns".*?</tr>', html, re.S)[0]
    assert environments_in(header) == PROMOTION_ORDER
    row = viewer.get("/?fragment=row&id=svc-s").content.decode()
    cells = list(dict.fromkeys(re.findall(r'href="/releases/(rel-env-[a-z]+)/"', row)))
    assert cells == [f"rel-{env}" for env in PROMOTION_ORDER]
    columns = viewer.get("/?fragment=columns").content.decode()
    assert environments_in(columns) == PROMOTION_ORDER


def test_the_api_index_lists_a_services_environments_in_promotion_order(chain):
    index = Client().get("/api/services/index/", **bearer("viewer")).json()["results"]
    assert [env["id"] for env in index[0]["environments"]] == PROMOTION_ORDER
    service = Client().get("/api/services/svc-s/", **bearer("viewer")).json()
    assert [env["id"] for env in service["environments"]] == PROMOTION_ORDER


def test_the_environments_page_and_a_services_page_are_in_promotion_order(viewer, chain):
    assert environments_in(viewer.get("/environments/").content.decode()) == PROMOTION_ORDER
    assert environments_in(viewer.get("/environments/?fragment=rows").content.decode()) == PROMOTION_ORDER
    assert environments_in(viewer.get("/services/svc-s/").content.decode()) == PROMOTION_ORDER
    charts = re.findall(r"runs per day in ([a-z]+) \(max", viewer.get("/services/svc-s/").content.decode())
    assert charts == ["dev", "staging", "prod"]


def offered(client, release: Release) -> list[tuple[str, bool]]:
    """The "Promote to" choices of a release's page: (value, whether it is a placeholder)."""
    html = client.get(f"/releases/{release.pk}/").content.decode()
    select = re.search(r'<select id="promote-env".*?</select>', html, re.S)[0]
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_promote_to_offers_the_next_environment_first(client, chain):
    deployer = sign_in(client, "deployer")
    assert offered(deployer, chain["env-dev"]) == [
        ("env-staging", "staging (env-staging) · next"),
        ("env-prod", "prod (env-prod)"),
    ]
    assert offered(deployer, chain["env-staging"]) == [
        ("env-prod", "prod (env-prod) · next"),
        ("env-dev", "dev (env-dev)"),
    ]


def test_a_prod_release_preselects_no_earlier_environment(client, chain):
    deployer = sign_in(client, "deployer")
    # Nothing comes after prod: the first choice is a placeholder, and the form cannot go without a choice.
    assert offered(deployer, chain["env-prod"]) == [
        ("", "choose an environment"),
        ("env-dev", "dev (env-dev)"),
        ("env-staging", "staging (env-staging)"),
    ]
    html = deployer.get(f"/releases/{chain['env-prod'].pk}/").content.decode()
    assert '<select id="promote-env" name="envId" required><option value="" selected disabled>' in html


def test_an_archived_environment_is_not_offered(client, chain):
    from services import lifecycle as services_lifecycle

    services_lifecycle.archive(Environment.objects.get(pk="env-prod"))
    deployer = sign_in(client, "deployer")
    assert offered(deployer, chain["env-staging"]) == [("", "choose an environment"), ("env-dev", "dev (env-dev)")]


def test_the_index_pages_change_when_an_order_does(viewer, chain, settings):
    """The index's pages (REST's and the dashboard's) are cached under the audit trail's head: an order change
    is audited, so it moves the head, and the next read shows the new order."""
    settings.INDEX_CACHE = settings.INDEX_PAGE_CACHE = True
    qa = Environment(id="env-qa", name="qa")
    qa.save()
    Service.objects.get(pk="svc-s").environments.add(qa)
    api = Client(**bearer("viewer"))
    assert environments_in(viewer.get("/").content.decode()) == ["env-dev", "env-qa", "env-staging", "env-prod"]
    assert [e["id"] for e in api.get("/api/services/index/").json()["results"][0]["environments"]] == [
        "env-dev",
        "env-qa",
        "env-staging",
        "env-prod",
    ]
    admin = Client(**bearer("admin"))
    patched = admin.patch("/api/environments/env-dev/", {"order": 5}, content_type="application/json")
    assert patched.status_code == 200, patched.content
    admin.patch("/api/environments/env-qa/", {"order": 9}, content_type="application/json")
    moved = ["env-dev", "env-qa", "env-staging", "env-prod"]  # dev (5) before qa (9): both ordered
    assert environments_in(viewer.get("/").content.decode()) == moved
    admin.patch("/api/environments/env-qa/", {"order": 1}, content_type="application/json")
    moved = ["env-qa", "env-dev", "env-staging", "env-prod"]
    assert environments_in(viewer.get("/").content.decode()) == moved
    assert [e["id"] for e in api.get("/api/services/index/").json()["results"][0]["environments"]] == moved
