"""/tokens/: issue an API token (every broken rule said at once, the secret shown once with a copy button),
list, revoke after a confirmation; in Django's client and in a real browser."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.conftest import sign_in
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


def test_signed_out_is_sent_to_sign_in():
    response = Client().get("/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_every_broken_rule_is_reported_at_once_and_nothing_is_issued(demo):
    client = sign_in(Client(), "deployer")
    form = {"name": " ", "role": "owner", "envIds": ["env-nowhere"], "expiresAt": "next week"}
    page = client.post("/tokens/", form).content.decode()
    for said in ("may not be blank", "not a valid choice", "RFC 3339"):
        assert said in page, said
    # The rules on the values themselves, all of them too, once each is well formed.
    form = {"name": "ci", "role": "admin", "envIds": ["env-nowhere"], "expiresAt": "2024-01-01T00:00:00Z"}
    page = client.post("/tokens/", form).content.decode()
    for said in ("at most your own role", "unknown environment &#x27;env-nowhere&#x27;", "in the future"):
        assert said in page, said
    assert not ApiToken.objects.exists()


def test_the_secret_is_on_the_answer_only(demo):
    client = sign_in(Client(), "deployer")
    expires = client.get("/tokens/").context["values"]["expiresAt"]  # the form's own default, 90 days ahead
    form = {"name": "ci", "role": "viewer", "envIds": ["env-staging"], "expiresAt": expires}
    answer = client.post("/tokens/", form)
    token = ApiToken.objects.get()
    secret = answer.context["issued"]["secret"]
    assert secret.startswith("cpat_") and secret in answer.content.decode()
    assert "no-store" in answer["Cache-Control"]
    assert 'data-copy="issued-secret" hidden' in answer.content.decode()  # shown by copy.js: no dead button without it
    assert answer.context["values"]["name"] == ""  # the form is blank again: a second click issues nothing unasked
    again = client.get("/tokens/").content.decode()
    assert secret not in again and token.prefix in again


def test_in_the_browser_issue_copy_and_revoke(committed_demo, watched, web):
    base = web()
    user = watched(base)
    user.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = user.sign_in("deployer", then="/tokens/")
    page.fill("#name", "ci-payments")
    page.get_by_label("staging").check()
    page.get_by_role("button", name="Issue the token").click()
    secret = page.locator("#issued-secret").input_value()
    assert secret.startswith("cpat_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copied-for=issued-secret]")).not_to_be_empty()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("ci-payments")
    expect(row).to_contain_text("env-staging")
    user.screenshots("tokens")
    row.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("tbody tr").first).to_contain_text("revoked")
    page.reload()
    assert secret not in page.content()
    user.clean()
