import pytest
from django.core.management import call_command

from controlplane import adapters


def test_healthz_answers_without_authentication(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_refuses_writes(client, db):
    assert client.post("/healthz").status_code == 405


def test_system_checks_are_clean(db):
    call_command("check", fail_level="WARNING")


def test_migrations_match_models(db):
    # makemigrations --check exits non-zero when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_registry_lists_five_adapters_with_native_defaults():
    assert adapters.names() == ["aws", "fly", "gcp", "k8s", "render"]
    for adapter in adapters.registry.values():
        assert adapter.default_region and adapter.default_cluster
    assert adapters.get("aws").effective_placement("", "") == ("us-east-1", "default")
    assert adapters.get("aws").effective_placement("eu-west-1", "c1") == ("eu-west-1", "c1")


def test_unknown_adapter_lookup_names_the_valid_ones():
    with pytest.raises(LookupError, match="unknown adapter 'heroku'; valid adapters: aws, fly, gcp, k8s, render"):
        adapters.get("heroku")
