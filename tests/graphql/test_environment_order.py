"""An environment's `order` over GraphQL, and the lists that show environments in promotion order."""

import pytest

from services.models import Environment, Service
from tests.graphql.test_mutations import done, refused, stored

pytestmark = pytest.mark.django_db

RULE = "must be a whole number from 0 to 1000, or null (after the ordered environments)."
ORDERED = "environment { id order }"


def environment_write(client, name: str, **arguments) -> dict:
    kinds = {"id": "ID!", "input": f"{name[0].upper()}{name[1:]}Input!"}
    declared = ", ".join(f"${a}: {kinds[a]}" for a in arguments)
    passed = ", ".join(f"{a}: ${a}" for a in arguments)
    document = f"mutation ({declared}) {{ {name}({passed}) {{ {ORDERED} errors {{ field code message }} }} }}"
    return client(document, **arguments)[name]


@pytest.fixture
def chain(db):
    """prod requires staging, staging requires dev: named so that alphabetical order (dev, prod, staging) is wrong."""
    dev = Environment(id="env-dev", name="dev")
    dev.save()
    Environment(id="env-staging", name="staging", policy_refs=["policy:requires:env-dev"]).save()
    prod = Environment(
        id="env-prod", name="prod", region="eu", cluster="c1", policy_refs=["policy:requires:env-staging"]
    )
    prod.save()
    service = Service(id="svc-s", name="S", repo="github.com/acme/s", deployment_adapters=["k8s"])
    service.save()
    service.environments.set(["env-prod", "env-dev", "env-staging"])
    return service


def test_order_is_written_read_and_validated(admin, viewer, chain):
    created = environment_write(admin, "environmentCreate", input={"id": "env-qa", "name": "qa", "order": 3})
    assert created == {"environment": {"id": "env-qa", "order": 3}, "errors": []}
    updated = environment_write(admin, "environmentUpdate", id="env-qa", input={"order": None})
    assert updated == {"environment": {"id": "env-qa", "order": None}, "errors": []}
    before = stored()
    for bad in (-1, 1001):
        payload = environment_write(admin, "environmentUpdate", id="env-qa", input={"order": bad})
        refused(payload, ("order", "INVALID", RULE))
        payload = environment_write(admin, "environmentCreate", input={"name": "qa-2", "order": bad})
        refused(payload, ("order", "INVALID", RULE))
    assert stored() == before


def test_a_services_environments_and_current_releases_are_in_promotion_order(viewer, chain):
    from releases import lifecycle
    from releases.models import Release

    for env in ("env-prod", "env-dev", "env-staging"):
        release = Release(service_id="svc-s", environment_id=env, sha="abcdef1", version="1")
        release.save()
        lifecycle.activate(lifecycle.begin_rollout(release))
    data = viewer('{ service(id: "svc-s") { environments { id } currentReleases { environment { id } } } }')
    expected = ["env-dev", "env-staging", "env-prod"]
    assert [e["id"] for e in data["service"]["environments"]] == expected
    assert [r["environment"]["id"] for r in data["service"]["currentReleases"]] == expected
    index = viewer("{ servicesIndex(first: 5) { edges { node { id environments { id } } } } }")
    assert [e["id"] for e in index["servicesIndex"]["edges"][0]["node"]["environments"]] == expected
    # The environments connection stays a keyset by name (docs/domain.md, "Promotion order").
    listed = viewer("{ environments(first: 5) { edges { node { id order } } } }")["environments"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == ["env-dev", "env-prod", "env-staging"]


def test_order_moves_an_environment_where_the_refs_leave_a_choice(admin, viewer, chain):
    done(admin, "environmentCreate", input={"id": "env-qa", "name": "qa"})
    assert list(Environment.objects.values_list("pk", flat=True)) == ["env-dev", "env-qa", "env-staging", "env-prod"]
    environment_write(admin, "environmentUpdate", id="env-qa", input={"order": 0})
    assert list(Environment.objects.values_list("pk", flat=True)) == ["env-qa", "env-dev", "env-staging", "env-prod"]
