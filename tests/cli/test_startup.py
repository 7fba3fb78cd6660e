"""What `cpctl` costs before it can answer, and how its requests reach the server.

`cpctl --help` imports click and nothing heavier; `cpctl whoami` adds rich and the standard library's HTTP
client, never httpx (the streams' and the proxies'): what each imports is pinned here, what that costs is measured
by `make bench` (bench/cli.py, against its 150 ms aim; a timed test flakes on a shared machine). Plain
calls go through `cpctl.transport.Direct`; these tests take it where the live server alone does not: a
connection kept alive, then dropped while idle, a server that hangs up, TLS, a proxy."""

import datetime
import ipaddress
import re
import socket
import ssl
import threading

import pytest
from django.db import connection

from audit.models import AuditEvent
from bench.importtime import importing
from cpctl.client import Client
from tests.cli.conftest import cpctl_env
from tests.cli.relay import relay
from tests.conftest import TOKENS

# What the commands read is tested against both databases elsewhere; these tests are about the client.
pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the client's start-up: tested on SQLite")

HEAVY = ("rich", "httpx", "httpx_sse", "httpcore", "h11", "anyio", "certifi", "cpctl.commands", "cpctl.client")
STREAMS = ("httpx", "httpx_sse", "httpcore", "h11", "anyio", "rich.live", "cpctl.follow", "cpctl.commands.rollouts")


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


def test_help_imports_click_and_nothing_heavier(config_home):
    started = importing("-m", "cpctl", "--help", env=cpctl_env(None, None, config_home))
    modules, done = started.modules, started.done
    assert done.returncode == 0 and done.stdout.startswith("Usage: cpctl [OPTIONS] COMMAND"), done.stderr
    # every command listed, with its help
    assert re.search(r"^  whoami +Who the control plane sees", done.stdout, re.MULTILINE), done.stdout
    assert loaded(modules, HEAVY) == []
    assert "click" in modules


def test_whoami_imports_neither_httpx_nor_the_streams(server, config_home):
    started = importing("-m", "cpctl", "whoami", env=cpctl_env(server, "deployer", config_home))
    modules, done = started.modules, started.done
    assert (done.returncode, done.stdout) == (0, f"dev-deployer (deployer, devToken) at {server}\n"), done.stderr
    assert loaded(modules, STREAMS) == []
    assert loaded(modules, ("cpctl.commands",)) == ["cpctl.commands", "cpctl.commands.identity"]
    assert "http.client" in modules and "rich.console" in modules


def test_one_kept_alive_connection_serves_a_command(server, cpctl):
    direct = cpctl("service", "show", "svc-demo", url=server)
    with relay(server) as keep_alive:
        relayed = cpctl("service", "show", "svc-demo", url=keep_alive.url)
    assert (relayed.code, relayed.out) == (0, direct.out)
    # The service, its index, the environments (their mode), its incidents: four requests, one connection.
    assert len(keep_alive.requests) == 4 and keep_alive.connections == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced(server):
    with relay(server) as keep_alive:
        client = Client(keep_alive.url, TOKENS["viewer"])
        assert client.get("/api/me/")["actor"] == "dev-viewer"
        keep_alive.drop_idle()
        assert client.get("/api/me/")["actor"] == "dev-viewer"  # not a failed call: a new connection
    assert keep_alive.connections == 2


def test_a_server_that_hangs_up_without_answering_is_exit_6(cpctl):
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up():
        while True:
            try:
                accepted, _ = listener.accept()
            except OSError:
                return
            accepted.recv(65536)
            accepted.close()

    threading.Thread(target=hang_up, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        failed = cpctl("whoami", url=url)
    finally:
        listener.close()
    assert failed.code == 6
    said = "RemoteProtocolError: Remote end closed connection without response"
    assert failed.err == f"error: cannot reach the control plane at {url} ({said}).\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (its PEM file), and a server's TLS context holding it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cpctl test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return folder / "cert.pem", context


def test_tls_is_verified_with_the_certificates_httpx_trusts(server, cpctl, certificate):
    pem, context = certificate
    with relay(server, tls=context) as tls:
        untrusted = cpctl("whoami", url=tls.url)
        assert untrusted.code == 6
        assert untrusted.err.startswith(f"error: cannot reach the control plane at {tls.url} (ConnectError: [SSL:")
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.err

        trusted = cpctl("whoami", url=tls.url, SSL_CERT_FILE=str(pem))
        assert (trusted.code, trusted.out) == (0, f"dev-deployer (deployer, devToken) at {tls.url}\n")
        # A stream (httpx) trusts the same: it reaches the server, whose refusal is the answer.
        stream = cpctl("runs", "logs", "run-nope", "--follow", url=tls.url, SSL_CERT_FILE=str(pem))
        assert stream.code == 4 and stream.err == "error: No such workflow run.\n", stream.err


def test_a_lists_links_are_followed_on_the_control_plane_configured(server, certificate, monkeypatch):
    # Behind a TLS relay that does not say so (no X-Forwarded-Proto), the server's `next` links read http://:
    # their path and query are asked of the control plane as configured, over TLS, with the token.
    pem, context = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    with relay(server, tls=context) as tls:
        client = Client(tls.url, TOKENS["deployer"])
        for n in range(3):
            client.post(
                "/api/incidents/", {"serviceId": "svc-demo", "severity": "low", "link": f"https://pager.example/{n}"}
            )
        found = client.items("/api/audit-events/", {"pageSize": 1}, None)
    events = AuditEvent.objects.count()
    assert events >= 3 and [e["seq"] for e in found] == list(range(1, events + 1))
    assert len(tls.requests) == 3 + events  # one page each


def test_a_configured_proxy_is_applied_by_httpx(server, cpctl):
    with relay(server) as proxy:
        through = cpctl("whoami", url=server, HTTP_PROXY=proxy.url, NO_PROXY="")
        assert (through.code, through.out) == (0, f"dev-deployer (deployer, devToken) at {server}\n")
        assert proxy.requests == [f"GET {server}/api/me/ HTTP/1.1"]  # asked of the proxy, as a URL

        bypassed = cpctl("whoami", url=server, HTTP_PROXY=proxy.url, NO_PROXY="127.0.0.1")
        assert bypassed.code == 0 and len(proxy.requests) == 1


def test_the_request_target_under_the_control_planes_url():
    prefixed = Client("https://cp.example/plane/", "t")
    assert prefixed.target("/api/me/") == "/plane/api/me/"
    assert prefixed.target("/api/releases/", {"serviceId": "svc a/b", "envId": None, "pageSize": 50}) == (
        "/plane/api/releases/?serviceId=svc+a%2Fb&pageSize=50"
    )
    # A link the server gave is complete (its own path), and goes to the control plane configured.
    link = "http://elsewhere.example/plane/api/releases/?cursor=abc"
    assert prefixed.target(link) == "/plane/api/releases/?cursor=abc"
    assert prefixed.target(link, {"pageSize": 5}) == "/plane/api/releases/?cursor=abc&pageSize=5"
