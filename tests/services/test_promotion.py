"""Promotion order (services.promotion): requires refs first, then `order`, then name; kept by every door."""

import io
import json
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from services import lifecycle, promotion
from services.models import Environment, Service
from tests.conftest import refused, sign_in


def env(env_id, order=None, requires=()):
    return (env_id, env_id.removeprefix("env-"), order, [f"policy:requires:env-{r}" for r in requires])


# --- the order itself (pure) ---


def test_a_requires_chain_wins_over_the_alphabet():
    # dev -> staging -> prod, named so that alphabetical order (dev, prod, staging) is wrong.
    assert promotion.ordered(
        [env("env-prod", requires=["staging"]), env("env-dev"), env("env-staging", requires=["dev"])]
    ) == [
        "env-dev",
        "env-staging",
        "env-prod",
    ]


def test_order_decides_where_the_refs_leave_a_choice_and_unordered_come_last():
    environments = [env("env-a"), env("env-b", order=2), env("env-c", order=1), env("env-d"), env("env-e", order=0)]
    assert promotion.ordered(environments) == ["env-e", "env-c", "env-b", "env-a", "env-d"]


def test_order_is_honoured_as_far_as_the_refs_allow():
    # staging requires dev; prod names no ref but comes last by its order, not before staging by its depth.
    environments = [env("env-prod", order=3), env("env-staging", order=2, requires=["dev"]), env("env-dev", order=1)]
    assert promotion.ordered(environments) == ["env-dev", "env-staging", "env-prod"]
    # An order that contradicts a ref gives way to it: the ref is what the gate enforces.
    environments = [env("env-dev", order=9), env("env-staging", order=1, requires=["dev"])]
    assert promotion.ordered(environments) == ["env-dev", "env-staging"]


def test_a_cycle_falls_back_to_order_then_name_the_same_every_time():
    environments = [
        env("env-b", requires=["a"]),
        env("env-a", requires=["b"]),
        env("env-c", requires=["b"]),
        env("env-z", order=5),
    ]
    expected = ["env-z", "env-a", "env-b", "env-c"]
    assert promotion.ordered(environments) == expected
    assert promotion.ordered(reversed(environments)) == expected


def test_refs_to_unknown_environments_and_unparsable_refs_order_nothing():
    environments = [
        ("env-b", "b", None, ["policy:requires:env-gone", "policy:requires:", "policy:requires:env-a:forever"]),
        ("env-a", "a", None, "not a list"),
    ]
    assert promotion.ordered(environments) == ["env-a", "env-b"]


# --- kept on the environments ---


def ranked() -> list[str]:
    return list(Environment.objects.values_list("pk", flat=True))


def chain(make_environment):
    dev = make_environment(id="env-dev", name="dev")
    staging = make_environment(id="env-staging", name="staging", policy_refs=["policy:requires:env-dev"])
    prod = make_environment(
        id="env-prod", name="prod", region="eu", cluster="c1", policy_refs=["policy:requires:env-staging"]
    )
    return dev, staging, prod


def test_environments_list_in_promotion_order_as_saves_change_it(make_environment):
    dev, staging, _ = chain(make_environment)
    assert ranked() == ["env-dev", "env-staging", "env-prod"]
    qa = make_environment(id="env-qa", name="qa")
    assert ranked() == ["env-dev", "env-qa", "env-staging", "env-prod"]  # no ref, no order: by name
    qa.order = 7
    qa.save()
    dev.order = 8
    dev.save()
    assert ranked() == ["env-qa", "env-dev", "env-staging", "env-prod"]
    staging.policy_refs = []
    staging.save()  # staging is free of dev now: unordered, after the ordered ones; prod still after staging
    assert ranked() == ["env-qa", "env-dev", "env-staging", "env-prod"]
    staging.order = 0
    staging.save()
    assert ranked() == ["env-staging", "env-qa", "env-dev", "env-prod"]  # prod, unordered, after the ordered
    assert staging.promotion_rank == 0 and Environment.objects.get(pk="env-dev").promotion_rank == 2


def test_a_save_that_cannot_move_anything_does_not_renumber(make_environment):
    dev, *_ = chain(make_environment)
    dev.region = "eu-west-1"
    with CaptureQueriesContext(connection) as captured:
        dev.save()
    assert [q["sql"] for q in captured if "promotion_rank" in q["sql"]] == [
        next(q["sql"] for q in captured if q["sql"].startswith("UPDATE"))
    ]
    # (the save's own UPDATE, nothing else) and the order's range is not asked of the database again:
    assert not [q["sql"] for q in captured if "_check" in q["sql"]]


@pytest.mark.parametrize("bad", [-1, 1001, 32767])
def test_order_is_a_whole_number_from_0_to_1000(make_environment, bad):
    environment = make_environment()
    environment.order = bad
    refused(environment.save, "order", "must be a whole number from 0 to 1000, or null")
    environment.refresh_from_db()
    assert environment.order is None


def test_an_order_change_is_audited(make_environment):
    environment = make_environment()
    environment.order = 10
    environment.save()
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "environment.update" and event.metadata["changes"] == {"order": [None, 10]}
    created = AuditEvent.objects.filter(subject_id=environment.pk, action="environment.create").get()
    assert "promotionRank" not in created.metadata  # derived: no one writes it


def test_archived_environments_keep_their_place(make_environment):
    _, staging, _ = chain(make_environment)
    lifecycle.archive(staging)
    assert ranked() == ["env-dev", "env-staging", "env-prod"]
    assert list(Environment.objects.filter(archived_at__isnull=True).values_list("pk", flat=True)) == [
        "env-dev",
        "env-prod",
    ]


def test_a_restore_renumbers_whatever_ranks_the_fixture_carries(db, tmp_path):
    fixture = [
        {"model": "services.environment", "pk": "env-staging", "fields": {
            "name": "staging", "order": 1, "promotion_rank": 5, "created_at": "2024-09-01T09:00:00Z"}},
        {"model": "services.environment", "pk": "env-dev", "fields": {
            "name": "dev", "order": 0, "created_at": "2024-09-01T09:00:00Z"}},
        {"model": "services.environment", "pk": "env-prod", "fields": {
            "name": "prod", "region": "r", "cluster": "c", "policy_refs": ["policy:requires:env-staging"],
            "promotion_rank": 0, "created_at": "2024-09-01T09:00:00Z"}},
    ]  # fmt: skip
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(fixture))
    call_command("loaddata", str(path), verbosity=0)
    assert list(Environment.objects.values_list("pk", "promotion_rank")) == [
        ("env-dev", 0),
        ("env-staging", 1),
        ("env-prod", 2),
    ]


def test_a_services_environments_are_in_promotion_order(make_environment):
    dev, staging, prod = chain(make_environment)
    service = Service(name="S", repo="github.com/acme/s", deployment_adapters=["k8s"])
    service.save()
    service.environments.set([prod, dev, staging])
    assert list(service.environments.values_list("pk", flat=True)) == ["env-dev", "env-staging", "env-prod"]


# --- where a release is offered promotion ---


def offered(source, environments):
    first, targets = promotion.promotion_targets(source, environments)
    return (first.pk if first else None), [e.pk for e in targets]


def test_promote_offers_the_environment_that_requires_this_one_first(make_environment):
    dev, staging, prod = chain(make_environment)
    qa = make_environment(id="env-qa", name="qa")  # after dev by name, but nothing says it follows dev
    environments = list(Environment.objects.all())
    assert offered(dev, environments) == ("env-staging", ["env-staging", "env-qa", "env-prod"])
    assert offered(staging, environments) == ("env-prod", ["env-prod", "env-dev", "env-qa"])
    assert offered(prod, environments) == (None, ["env-dev", "env-qa", "env-staging"])  # nothing comes after prod
    assert offered(qa, environments) == ("env-staging", ["env-staging", "env-dev", "env-prod"])  # the next one


def test_rebuild_read_models_renumbers_after_a_change_past_the_models(make_environment):
    chain(make_environment)
    Environment.objects.filter(pk="env-staging").update(policy_refs=[], order=0)  # no save: no renumbering
    assert ranked() == ["env-dev", "env-staging", "env-prod"]
    call_command("rebuild_read_models", verbosity=0, stdout=io.StringIO())
    assert ranked() == ["env-staging", "env-dev", "env-prod"]  # staging ordered; then by name


# --- the admin ---


def test_the_admin_writes_an_order_and_lists_environments_in_promotion_order(client, make_environment):
    chain(make_environment)
    staff = sign_in(client, "admin")
    add = reverse("admin:services_environment_add")
    for bad in ("-1", "1001", "first"):
        response = staff.post(add, {"name": "qa", "order": bad})
        assert (
            response.status_code == 200
            and "must be a whole number from 0 to 1000, or null" in response.content.decode()
        )
    assert staff.post(add, {"id": "env-qa", "name": "qa", "order": "0"}).status_code == 302
    assert ranked() == ["env-qa", "env-dev", "env-staging", "env-prod"]
    listed = staff.get(reverse("admin:services_environment_changelist")).content.decode()
    rows = re.findall(r'href="/admin/services/environment/(env-[a-z]+)/change/', listed)
    assert list(dict.fromkeys(rows)) == ["env-qa", "env-dev", "env-staging", "env-prod"]
