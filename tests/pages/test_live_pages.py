"""A service's page and an environment's page follow changes live, without a reload: what the REST API (or
anyone) changes shows on the page open in a browser."""

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import TOKENS

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYER = {"Authorization": f"Bearer {TOKENS['deployer']}"}


def test_a_service_page_and_an_environment_page_follow_changes(committed_demo, web, watched):
    base = web()
    user = watched(base)
    service = user.sign_in("viewer", then="/services/svc-demo/")
    expect(service.locator("html[data-live=on]")).to_have_count(1)  # the audit stream is open
    service.evaluate("window.__same_page = true")  # gone if the page reloads
    incident = {
        "serviceId": "svc-demo",
        "severity": "critical",
        "title": "Checkout 500s",
        "link": "https://pd.example.com/9",
    }
    assert requests.post(f"{base}/api/incidents/", json=incident, headers=DEPLOYER, timeout=30).status_code == 201
    expect(service.locator("#live-service")).to_contain_text("Checkout 500s", timeout=15_000)
    assert service.evaluate("window.__same_page") is True

    environment = user.go("/environments/env-staging/")
    expect(environment.locator("html[data-live=on]")).to_have_count(1)
    environment.evaluate("window.__same_page = true")
    release = {"serviceId": "svc-demo", "envId": "env-staging", "sha": "feedbee", "version": "2026.11.28"}
    assert requests.post(f"{base}/api/releases/", json=release, headers=DEPLOYER, timeout=30).status_code == 201
    # The new Draft is the service's latest release there, shown beside what runs.
    expect(environment.locator("#live-environment")).to_contain_text("2026.11.28", timeout=15_000)
    assert environment.evaluate("window.__same_page") is True
    user.clean()


def test_a_promotion_changes_the_index_cell_live(always_open, web, worker, watched):
    base = web()
    worker()
    user = watched(base)
    index = user.sign_in("viewer", then="/")
    expect(index.locator("html[data-live=on]")).to_have_count(1)
    index.evaluate("window.__same_page = true")
    prod = index.locator("#row-svc-demo td").nth(2)  # the columns are in promotion order: staging, prod
    expect(prod).to_contain_text("nothing active")
    promoted = requests.post(
        f"{base}/api/releases/rel-123/promote/", json={"envId": "env-prod"}, headers=DEPLOYER, timeout=30
    )
    assert promoted.status_code == 202, promoted.text
    # The worker rolls it out; the cell then shows what runs in prod, with no reload.
    expect(prod).to_contain_text("2024.10.01", timeout=30_000)
    expect(prod).not_to_contain_text("nothing active", timeout=30_000)
    assert index.evaluate("window.__same_page") is True
    user.clean()
