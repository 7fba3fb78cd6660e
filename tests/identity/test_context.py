import re

from controlplane.identity import context
from controlplane.identity.context import acting_as, current_actor, current_principal
from tests.conftest import bearer


def test_every_response_carries_a_request_id(client, db):
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_a_well_formed_incoming_request_id_is_kept_and_others_replaced(client, db):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="trace-abc.123")["X-Request-ID"] == "trace-abc.123"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_client_headers_never_set_the_actor_or_role(client, db):
    response = client.get(
        "/api/me/", HTTP_X_ACTOR="root", HTTP_X_ROLE="admin", HTTP_X_FORWARDED_USER="root", **bearer("viewer")
    )
    assert response.json() == {"actor": "dev-viewer", "role": "viewer", "authMethod": "devToken"}


def test_outside_a_request_the_actor_is_the_system_process(monkeypatch):
    monkeypatch.setattr(context, "_process_principal", context.system("loaddata"))
    assert current_actor() == "system:loaddata"
    with acting_as("worker"):
        assert current_actor() == "system:worker"
    assert current_principal().actor == "system:loaddata"
