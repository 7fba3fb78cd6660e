"""Server log lines are redacted like the audit trail, before any handler writes them: messages, tracebacks,
and the request lines runserver logs (a token sent in a URL is refused, and must not reach the log either)."""

import io
import logging
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

from tests.conftest import TOKENS


@contextmanager
def console_output():
    """What the configured console handler (settings.LOGGING, with its filters) writes."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


@pytest.fixture
def console():
    with console_output() as buffer:
        yield buffer


def test_messages_and_tracebacks_are_redacted(console):
    log = logging.getLogger("releases.engine")
    log.warning("adapter said: deploying Bearer sekritsekrit123 with AKIAIOSFODNN7EXAMPLE to prod")
    log.warning("echo %s", TOKENS["admin"])
    try:
        raise RuntimeError("registry refused https://ci:hunter2hunter2@registry.example.com/v2/?token=abcdefgh")
    except RuntimeError:
        log.exception("run %s crashed", "run-1")
    written = console.getvalue()
    for secret in ("sekritsekrit123", "AKIAIOSFODNN7EXAMPLE", TOKENS["admin"], "hunter2hunter2", "abcdefgh"):
        assert secret not in written, secret
    assert "adapter said: deploying [REDACTED] with [REDACTED] to prod" in written
    assert "RuntimeError: registry refused https://REDACTED@registry.example.com/v2/?token=[REDACTED]" in written


@pytest.mark.parametrize("token", [TOKENS["admin"], "some-random-token-9f8e7d6c5b4a"])
def test_runserver_request_lines_never_carry_a_token_from_the_url(token):
    """A real runserver request handler (django.server logger), serving the application on loopback."""
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler, ipv6=False)
    server.set_app(WSGIHandler())  # the application runserver serves, without setting Django up again
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    with console_output() as console:
        url = f"http://127.0.0.1:{server.server_port}/api/me/?access_token={token}&x=1"
        try:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=10)
            assert refused.value.code == 401
        finally:
            thread.join(timeout=10)
            server.server_close()
    written = console.getvalue()
    assert "django.server" in written and '"GET /api/me/?access_token=[REDACTED]&x=1 HTTP/1.1" 401' in written
    assert token not in written
