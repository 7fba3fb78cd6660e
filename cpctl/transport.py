"""How cpctl's requests reach the control plane: what a command pays for before it can say anything.

A plain call (a request and its whole JSON answer: every command's reads and actions) goes through the
standard library's `http.client`, on one keep-alive connection. httpx, whose import and client (its TLS
context loaded even for http://) cost about as much as all the rest of `cpctl whoami`, is loaded only for what
needs it: the streams (`Client.events`, with httpx-sse), and every call when a proxy is configured, which httpx
applies as it always has (NO_PROXY included). Both trust the same certificates and word a failure the same way
(tests/cli/test_startup.py).
"""

import http.client
import json
import os
import select
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult

CONNECT_TIMEOUT, TIMEOUT = 10.0, 30.0  # seconds: to connect (TLS included), then for each read or write


@dataclass(frozen=True)
class Response:
    """An answer, whole, as cpctl reads it whichever way it came."""

    status: int
    reason: str
    headers: Mapping[str, str]  # looked up case-insensitively (http.client's and httpx's both are)
    content: bytes
    host: str  # the host that answered, for a message that names it

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        return json.loads(self.content)


class Unreachable(Exception):
    """No answer. `kind` names what failed in httpx's words (ConnectError, ConnectTimeout, ReadError,
    ReadTimeout, RemoteProtocolError), so that a failure reads the same on a plain call and on a stream; `said`
    is the connection's own words for it (never a request's headers)."""

    def __init__(self, kind: str, said: str = ""):
        super().__init__(f"{kind}: {said}" if said else kind)
        self.kind, self.said = kind, said


PROXIES = {"http_proxy", "https_proxy", "all_proxy"}  # the variables httpx applies (any case)


def proxied() -> bool:
    """Whether httpx may apply a proxy to the control plane, as it reads them (urllib's `getproxies`): the
    variables, or, without them, the system's settings on macOS and Windows (urllib.request, which takes a while
    to import, only there). When in doubt, yes: httpx then decides, NO_PROXY included."""
    if any(name.lower() in PROXIES and value for name, value in os.environ.items()):
        return True
    if sys.platform not in ("darwin", "win32"):
        return False
    import urllib.request

    return any(urllib.request.getproxies().get(scheme) for scheme in ("http", "https", "all"))


def ssl_context() -> ssl.SSLContext:
    """The certificates httpx trusts by default: SSL_CERT_FILE, else SSL_CERT_DIR, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Direct:
    """Plain calls over `http.client`: one connection, kept alive between calls when the server allows it."""

    def __init__(self, url: SplitResult):
        self.url = url
        self.connection: http.client.HTTPConnection | None = None

    def send(self, method: str, target: str, body: bytes | None, headers: dict) -> Response:
        connection = self._connected()
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
        except http.client.HTTPException as e:  # closed without answering, or not HTTP
            connection.close()
            raise Unreachable("RemoteProtocolError", str(e)) from None
        except OSError as e:
            connection.close()
            raise Unreachable("ReadTimeout" if isinstance(e, TimeoutError) else "ReadError", str(e)) from None
        return Response(answer.status, answer.reason, answer.headers, content, self.url.hostname or "")

    def _connected(self) -> http.client.HTTPConnection:
        connection = self.connection
        if connection is not None and connection.sock is not None and _dropped(connection.sock):
            connection.close()  # the server closed it while it was idle: a new one, rather than a failed call
        if connection is None:
            if self.url.scheme == "https":
                connection = http.client.HTTPSConnection(
                    self.url.hostname, self.url.port, timeout=CONNECT_TIMEOUT, context=ssl_context()
                )
            else:
                connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=CONNECT_TIMEOUT)
            self.connection = connection
        if connection.sock is None:
            try:
                connection.connect()
            except OSError as e:  # refused, no such host, a certificate not trusted…
                connection.close()
                raise Unreachable("ConnectTimeout" if isinstance(e, TimeoutError) else "ConnectError", str(e)) from None
            connection.sock.settimeout(TIMEOUT)
        return connection


def _dropped(sock) -> bool:
    """An idle connection is readable only when the server has closed it (or sent what nobody asked for)."""
    return bool(select.select([sock], [], [], 0)[0])
