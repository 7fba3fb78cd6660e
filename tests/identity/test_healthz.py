"""The health check answers probes and load balancers whatever credentials they send, valid or not."""

import pytest

from tests.conftest import TOKENS


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("?access_token=x", {}),
        (f"?token={TOKENS['admin']}", {}),
        ("", {"HTTP_AUTHORIZATION": "Bearer not-a-token-at-all"}),
        ("", {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}),
        ("", {"HTTP_AUTHORIZATION": f"Bearer {TOKENS['viewer']}"}),
        ("?access_token=x", {"HTTP_AUTHORIZATION": "Bearer "}),
    ],
)
def test_healthz_ignores_credentials(client, db, query, headers):
    response = client.get(f"/healthz{query}", **headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "WWW-Authenticate" not in response


def test_healthz_ignores_credentials_outside_dev_mode_too(client, db, settings):
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devMode": False}
    assert client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKENS['admin']}").status_code == 200


def test_other_paths_still_refuse_tokens_in_the_url(client, db):
    assert client.get("/api/me/?access_token=x").status_code == 401
