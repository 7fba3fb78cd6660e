"""OIDC end to end against a real OpenID Provider: browser sign-in and API access tokens."""

import base64
import json
import urllib.parse as urlparse
from datetime import UTC, datetime

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.identity.conftest import access_token, sign_in_at_provider

pytestmark = pytest.mark.django_db


def start_sign_in(client, next_url="/api/me/"):
    response = client.get(f"/oidc/authenticate/?next={next_url}")
    assert response.status_code == 302
    return response["Location"]


def come_back(client, callback_url):
    return client.get(callback_url.removeprefix("http://testserver"))


# --- browser sign-in (authorization code flow) ---


def test_browser_sign_in_gets_a_session_with_the_role_from_the_claim(client, oidc):
    authorize = start_sign_in(client)
    query = urlparse.parse_qs(urlparse.urlparse(authorize).query)
    assert authorize.startswith(f"{oidc.issuer}/auth?")
    assert query["state"][0] and query["nonce"][0] and query["code_challenge_method"] == ["S256"]
    response = come_back(client, sign_in_at_provider(authorize, "alice"))
    assert response.status_code == 302 and response["Location"] == "/api/me/"
    assert client.get("/api/me/").json() == {"actor": "alice", "role": "admin", "authMethod": "oidc"}
    assert client.get("/admin/").status_code == 200  # an admin-role principal can use the Django admin


def test_a_deployer_signs_in_as_a_deployer_and_cannot_use_the_admin(client, oidc):
    come_back(client, sign_in_at_provider(start_sign_in(client), "bob"))
    assert client.get("/api/me/").json()["role"] == "deployer"
    assert client.get("/admin/", follow=True).status_code == 403


def test_a_user_whose_claims_map_to_no_role_is_refused(client, oidc):
    response = come_back(client, sign_in_at_provider(start_sign_in(client), "carol"))
    assert response.status_code == 403
    assert b"no value of the &#x27;groups&#x27; claim maps to a role" in response.content
    assert client.get("/api/me/").status_code == 401


def test_a_default_role_admits_users_without_a_mapped_claim(client, oidc, settings):
    settings.CONTROLPLANE["oidc"]["defaultRole"] = "viewer"
    come_back(client, sign_in_at_provider(start_sign_in(client), "carol"))
    assert client.get("/api/me/").json() == {"actor": "carol", "role": "viewer", "authMethod": "oidc"}


def test_the_actor_can_be_the_email(client, oidc, settings):
    settings.CONTROLPLANE["oidc"]["actorClaim"] = "email"
    come_back(client, sign_in_at_provider(start_sign_in(client), "dave"))
    assert client.get("/api/me/").json() == {"actor": "dave@example.com", "role": "viewer", "authMethod": "oidc"}


def test_a_tampered_state_is_refused(client, oidc):
    callback = sign_in_at_provider(start_sign_in(client), "alice")
    forged = callback.replace("state=", "state=forged")
    response = come_back(client, forged)
    assert response.status_code == 400
    assert b"could not be verified" in response.content
    assert client.get("/api/me/").status_code == 401


def test_a_replayed_callback_is_refused(client, oidc):
    callback = sign_in_at_provider(start_sign_in(client), "alice")
    assert come_back(client, callback).status_code == 302
    client.post("/logout/")
    assert come_back(client, callback).status_code in (400, 401)
    assert client.get("/api/me/").status_code == 401


def test_a_tampered_code_is_refused_by_the_provider_and_shown_not_crashed(client, oidc):
    callback = sign_in_at_provider(start_sign_in(client), "alice")
    response = come_back(client, callback.replace("code=", "code=x"))
    assert response.status_code == 401
    assert b"did not complete the sign-in" in response.content


# --- API access tokens ---


def test_an_api_call_with_a_provider_issued_access_token(client, oidc):
    token = access_token(oidc, "bob")
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json() == {"actor": "bob", "role": "deployer", "authMethod": "oidc"}


def test_the_providers_keys_are_cached_not_fetched_per_request(client, oidc, monkeypatch):
    token = access_token(oidc, "bob")
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    fetches = []
    original = jwt.PyJWKClient.fetch_data
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: fetches.append(self.uri) or original(self))
    with oidc.paused():  # and a request that went to the provider now would hang, then fail
        for _ in range(3):
            assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert fetches == []


def _at(timestamp: int):
    """The control plane's clock stopped at a Unix time (the provider's own clock is not moved)."""
    return time_machine.travel(datetime.fromtimestamp(timestamp, UTC), tick=False)


def test_an_expired_token_is_refused(client, oidc):
    token = access_token(oidc, "bob", resource="urn:controlplane:short-lived")
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    with _at(expires - 1):
        assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    with _at(expires + 1):
        response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and response.json()["detail"] == "the access token has expired."


def test_expiry_tolerates_the_configured_clock_skew(client, oidc, settings):
    settings.CONTROLPLANE["oidc"]["leewaySeconds"] = 30
    token = access_token(oidc, "bob")
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    with _at(expires + 29):
        assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    with _at(expires + 31):
        response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and response.json()["detail"] == "the access token has expired."


def test_a_token_for_another_audience_is_refused(client, oidc):
    token = access_token(oidc, "alice", resource="urn:other")
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and "another audience" in response.json()["detail"]


def _segments(token):
    return token.split(".")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_tampered_token_is_refused(client, oidc):
    header, payload, signature = _segments(access_token(oidc, "bob"))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["cp-admins"]
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {header}.{_b64(claims)}.{signature}")
    assert response.status_code == 401 and "signature does not verify" in response.json()["detail"]


def test_a_token_signed_by_another_key_is_refused(client, oidc):
    genuine = access_token(oidc, "bob")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    claims["groups"] = ["cp-admins"]
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": jwt.get_unverified_header(genuine)["kid"]})
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401 and "signature does not verify" in response.json()["detail"]
    unknown_key = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": "someone-elses-key"})
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {unknown_key}")
    assert response.status_code == 401 and "unknown key" in response.json()["detail"]


def test_an_unsigned_token_is_refused(client, oidc):
    claims = jwt.decode(access_token(oidc, "bob"), options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'kid': 'test-op-key'})}.{_b64(claims)}."
    assert client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {unsigned}").status_code == 401


# --- not configured ---


def test_without_oidc_configured_authenticate_says_how_to_configure_it(client):
    response = client.get("/oidc/authenticate/")
    assert response.status_code == 501
    assert b"OIDC is not configured" in response.content and b"OIDC_RP_CLIENT_ID" in response.content
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 501
