import logging

import pytest
from django.core.checks import run_checks
from django.test import Client

from tests.conftest import TOKENS, bearer, sign_in


def test_bearer_dev_token_identifies_the_actor_and_role(client, db):
    assert client.get("/api/me/", **bearer("deployer")).json()["actor"] == "dev-deployer"


@pytest.mark.parametrize(
    "header", ["Bearer nope-nope-nope-nope", "Bearer ", "Basic dXNlcjpwYXNz", f"Token {TOKENS['admin']}"]
)
def test_bad_authorization_headers_are_refused_with_401(client, db, header):
    response = client.get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]


@pytest.mark.parametrize("param", ["access_token", "token"])
def test_tokens_in_the_url_are_refused(client, db, param):
    response = client.get(f"/api/me/?{param}={TOKENS['admin']}")
    assert response.status_code == 401
    assert "never in the URL" in response.json()["detail"]
    assert TOKENS["admin"] not in response.content.decode()


def test_outside_dev_mode_a_real_dev_token_gets_the_answer_a_random_one_gets(client, db, settings, caplog):
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devMode": False}
    caplog.set_level(logging.INFO)
    real = client.get("/api/me/", **bearer("admin"))
    random = client.get("/api/me/", HTTP_AUTHORIZATION="Bearer cpdev_not-a-token-anyone-configured")
    assert real.status_code == random.status_code == 401
    assert real.content == random.content == b'{"detail": "the bearer token is not valid."}'
    assert real["WWW-Authenticate"] == random["WWW-Authenticate"]
    # The operator learns that a dev token was tried against a server without dev mode; nobody learns the token.
    assert "dev token 'dev-admin' was presented while dev mode is off" in caplog.text
    assert TOKENS["admin"] not in caplog.text
    assert client.post("/login/", {"token": TOKENS["admin"]}).status_code == 403


def test_a_signed_in_session_ends_when_dev_mode_is_switched_off(client, db, settings):
    sign_in(client, "admin")
    assert client.get("/api/me/").status_code == 200
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devMode": False}
    assert client.get("/api/me/").status_code == 401


def test_a_revoked_token_ends_its_sessions(client, db, settings):
    sign_in(client, "deployer")
    tokens = dict(settings.CONTROLPLANE["devTokens"])
    del tokens[TOKENS["deployer"]]
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": tokens}
    assert client.get("/api/me/").status_code == 401


def test_a_changed_role_applies_to_live_sessions(client, db, settings):
    sign_in(client, "viewer")
    tokens = {**settings.CONTROLPLANE["devTokens"], TOKENS["viewer"]: {"id": "dev-viewer", "role": "admin"}}
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": tokens}
    assert client.get("/api/me/").json()["role"] == "admin"


def test_sign_in_page_with_a_wrong_token(client, db):
    response = client.post("/login/", {"token": "wrong-token-wrong-token"})
    assert response.status_code == 401
    assert b"That dev token is not valid" in response.content
    assert client.get("/api/me/").status_code == 401


def test_sign_in_keeps_only_a_digest_in_the_session(client, db):
    sign_in(client, "admin")
    session = client.session
    assert TOKENS["admin"] not in str(dict(session.items()))
    assert session["controlplane.principal"]["method"] == "devToken"


def test_sign_in_redirects_only_to_local_pages(client, db):
    response = client.post("/login/?next=https://evil.example.com/", {"token": TOKENS["viewer"]})
    assert response["Location"] == "/"
    response = client.post("/login/", {"token": TOKENS["viewer"], "next": "/api/me/"})
    assert response["Location"] == "/api/me/"


def test_sign_out_ends_the_session(client, db):
    sign_in(client, "viewer")
    assert client.post("/logout/").status_code == 302
    assert client.get("/api/me/").status_code == 401


def test_unsafe_session_requests_need_csrf_and_bearer_requests_do_not(db):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/")
    csrf = page.cookies["csrftoken"].value
    assert browser.post("/login/", {"token": TOKENS["admin"], "csrfmiddlewaretoken": csrf}).status_code == 302
    refused = browser.post("/api/me/", {}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert browser.post("/logout/").status_code == 403  # a page form, without its token
    api = Client(enforce_csrf_checks=True)
    assert (
        api.post("/api/me/", {}, content_type="application/json", **bearer("admin")).status_code == 405
    )  # past CSRF, to the method check


def test_tokens_never_reach_the_logs(client, db, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/api/me/", HTTP_AUTHORIZATION="Bearer not-a-real-token-123456")
    client.get("/api/me/", **bearer("admin"))
    client.post("/login/", {"token": "wrong-token-wrong-token"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "not-a-real-token-123456" not in logged and TOKENS["admin"] not in logged
    assert "wrong-token-wrong-token" not in logged


def test_broken_dev_token_config_fails_the_system_check_without_echoing_tokens(settings):
    settings.CONTROLPLANE = {
        **settings.CONTROLPLANE,
        "devTokens": {"short": {"id": "a", "role": "viewer"}, "long-enough-secret-1": {"id": "b", "role": "root"}},
    }
    messages = [str(m) for m in run_checks() if m.id.startswith("controlplane.")]
    assert any("entry 1 (a): the token is shorter than 16 characters" in m for m in messages)
    assert any("entry 2 (b): role must be one of viewer, deployer, admin" in m for m in messages)
    assert not any("long-enough-secret-1" in m for m in messages)


def test_dev_tokens_command_creates_a_private_demo_set(tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": {}}
    settings.DEV_TOKENS_FILE = tmp_path / "dev-tokens.json"
    call_command("dev_tokens")
    out = capsys.readouterr().out
    import json

    created = json.loads(settings.DEV_TOKENS_FILE.read_text())
    assert sorted(e["role"] for e in created.values()) == ["admin", "deployer", "viewer"]
    assert oct(settings.DEV_TOKENS_FILE.stat().st_mode & 0o777) == "0o600"
    assert all(token in out for token in created) and 'curl -H "Authorization: Bearer cpdev_' in out


def test_dev_tokens_command_never_prints_configured_tokens(tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.DEV_TOKENS_FILE = tmp_path / "dev-tokens.json"  # none generated: every token is configured
    call_command("dev_tokens")
    out = capsys.readouterr().out
    assert not any(token in out for token in TOKENS.values()), out
    assert "dev-deployer" in out and "deployer" in out and "not shown" in out
    assert 'curl -H "Authorization: Bearer $TOKEN"' in out


def test_dev_tokens_command_prints_the_demo_set_it_generated_on_later_runs(tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": {}}
    settings.DEV_TOKENS_FILE = tmp_path / "dev-tokens.json"
    call_command("dev_tokens")
    import json

    created = json.loads(settings.DEV_TOKENS_FILE.read_text())
    # The next `make run` reads them back from the file as configured tokens, and still shows them.
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": created}
    capsys.readouterr()
    call_command("dev_tokens")
    out = capsys.readouterr().out
    assert all(token in out for token in created) and "Created" not in out


def test_dev_tokens_command_prints_one_roles_token_bare_for_a_script(tmp_path, settings, capsys):
    import json

    from django.core.management import CommandError, call_command

    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": {}}
    settings.DEV_TOKENS_FILE = tmp_path / "dev-tokens.json"
    call_command("dev_tokens", role="deployer")  # creates the demo set first, saying nothing else
    out = capsys.readouterr().out
    created = json.loads(settings.DEV_TOKENS_FILE.read_text())
    assert out == next(t for t, e in created.items() if e["role"] == "deployer") + "\n"

    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": {TOKENS["viewer"]: created.popitem()[1]}}
    settings.DEV_TOKENS_FILE = tmp_path / "none.json"  # configured tokens only: never printed
    with pytest.raises(CommandError, match="No deployer token to print"):
        call_command("dev_tokens", role="deployer")
    assert TOKENS["viewer"] not in capsys.readouterr().out
