"""A real OpenID Provider (the npm package oidc-provider) on loopback, and a user agent to drive it."""

import os
import re
import signal
import socket
import subprocess
import urllib.parse as urlparse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.environment import start_process, stop_group, wait_for

PROVIDER_DIR = Path(__file__).parent.parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET, AUDIENCE = "controlplane-test", "test-client-secret-not-a-real-one", "controlplane"
REDIRECT_URI = "http://testserver/oidc/callback/"
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "groups": ["cp-admins", "staff"]},
    "bob": {"email": "bob@example.com", "groups": ["cp-deployers"]},
    "dave": {"email": "dave@example.com", "groups": "cp-viewers"},
    "carol": {"email": "carol@example.com", "groups": ["marketing"]},
}
ROLE_MAP = {"cp-admins": "admin", "cp-deployers": "deployer", "cp-viewers": "viewer"}


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen

    @contextmanager
    def paused(self):
        """Freeze the provider: a request that needs it now hangs instead of being answered."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def provider():
    port = _free_port()
    env = {
        **os.environ,
        "OP_PORT": str(port),
        "OP_CLIENT_ID": CLIENT_ID,
        "OP_CLIENT_SECRET": CLIENT_SECRET,
        "OP_REDIRECT_URI": REDIRECT_URI,
        "OP_AUDIENCE": AUDIENCE,
        "OP_ACCOUNTS": __import__("json").dumps(ACCOUNTS),
    }
    process = start_process(
        ["node", str(PROVIDER_DIR / "server.mjs")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    issuer = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the test OpenID Provider did not start: {process.stdout.read().decode()}")
        try:
            return requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout=30, what="the test OpenID Provider")
    except BaseException:
        stop_group(process)
        raise
    yield Provider(issuer, process)
    stop_group(process)


@pytest.fixture
def oidc(settings, provider):
    """The control plane configured for the test provider, as an operator would with environment variables."""
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider.issuer}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider.issuer}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider.issuer}/me"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider.issuer}/jwks"
    settings.CONTROLPLANE = {
        **settings.CONTROLPLANE,
        "oidc": {
            **settings.CONTROLPLANE["oidc"],
            "issuer": provider.issuer,
            "audience": AUDIENCE,
            "roleMap": ROLE_MAP,
            "leewaySeconds": 0,
        },
    }
    return provider


def _submit_form(agent: requests.Session, page: requests.Response, **values) -> requests.Response:
    action, body = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S).groups()
    fields = {}
    for tag in re.findall(r"<input[^>]*>", body):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return agent.post(urlparse.urljoin(page.url, action), data={**fields, **values}, allow_redirects=False)


def sign_in_at_provider(authorize_url: str, login: str) -> str:
    """Play the user at the provider: sign in, consent, and return where it sends the browser back to."""
    agent = requests.Session()
    response = agent.get(authorize_url, allow_redirects=True, timeout=10)
    response = _submit_form(agent, response, login=login, password="any")
    for _ in range(10):
        if response.status_code in (302, 303):
            location = urlparse.urljoin(response.url, response.headers["Location"])
            if location.startswith("http://testserver/"):
                return location
            response = agent.get(location, allow_redirects=False, timeout=10)
        else:
            response = _submit_form(agent, response)  # the consent page
    raise AssertionError("the provider never redirected back")


def access_token(provider: Provider, login: str, resource: str = "urn:controlplane") -> str:
    """An access token the provider issues to `login`, as an API client would obtain it."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email groups",
        "state": "s",
        "nonce": "n",
        "resource": resource,
    }
    back = sign_in_at_provider(f"{provider.issuer}/auth?{urlparse.urlencode(params)}", login)
    code = urlparse.parse_qs(urlparse.urlparse(back).query)["code"][0]
    response = requests.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "resource": resource,
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]
