"""Server log lines are redacted like the audit trail, before any handler writes them: messages, tracebacks,
and the web server's access lines (a token sent in a URL is refused, and must not reach the log either)."""

import io
import json
import logging
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.conftest import TOKENS
from tests.environment import clean_environment, web_server


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
def test_access_lines_never_carry_a_token_from_the_url(token, tmp_path):
    """The real web server (`manage.py web`): the access lines, gunicorn's for an ordinary request (logger
    gunicorn.access) and uvicorn's for a stream (uvicorn.access), of requests with a configured dev token, or an
    unknown one, in their query strings."""
    env = clean_environment(
        tmp_path,
        DEBUG="1",
        LOG_LEVEL="INFO",
        CONTROLPLANE_DEV_TOKENS=json.dumps({t: {"id": f"dev-{role}", "role": role} for role, t in TOKENS.items()}),
    )
    log_path = tmp_path / "web.log"
    with web_server(env, log_path) as url:
        for path in ("/api/me/", "/api/audit-events/stream"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}{path}?access_token={token}&x=1", timeout=10)
            assert refused.value.code == 401
    written = log_path.read_text()
    ordinary, stream = (
        [line for line in written.splitlines() if f"{logger} " in line and path in line]
        for logger, path in (("gunicorn.access", "/api/me/"), ("uvicorn.access", "/api/audit-events/stream"))
    )
    assert len(ordinary) == 1 and '"GET /api/me/?access_token=[REDACTED]&x=1 HTTP/1.1" 401' in ordinary[0]
    assert len(stream) == 1 and '"GET /api/audit-events/stream?access_token=[REDACTED]&x=1 HTTP/1.1" 401' in stream[0]
    assert token not in written
