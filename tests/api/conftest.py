import json

import pytest
from django.test import Client

from tests.conftest import TOKENS


class Api:
    """A JSON client for one role."""

    def __init__(self, role: str | None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS[role]}"} if role else {}
        self.client = Client(**headers)

    def _send(self, method, url, body=None, **extra):
        if body is not None and not isinstance(body, str | bytes):
            body = json.dumps(body)
        kwargs = {"content_type": extra.pop("content_type", "application/json")} if body is not None else {}
        return (
            getattr(self.client, method)(url, body, **kwargs, **extra)
            if body is not None
            else getattr(self.client, method)(url, **extra)
        )

    def get(self, url, **extra):
        return self._send("get", url, **extra)

    def post(self, url, body=None, **extra):
        return self._send("post", url, body if body is not None else {}, **extra)

    def put(self, url, body, **extra):
        return self._send("put", url, body, **extra)

    def patch(self, url, body, **extra):
        return self._send("patch", url, body, **extra)

    def delete(self, url, **extra):
        return self._send("delete", url, **extra)


@pytest.fixture
def api(db):
    """`api("deployer").post(...)`: a client acting with that role (None: anonymous)."""
    return Api


@pytest.fixture
def admin(api):
    return api("admin")


@pytest.fixture
def viewer(api):
    return api("viewer")


@pytest.fixture
def deployer(api):
    return api("deployer")
