"""A relay between cpctl and the live control plane, as deployments put one there: a reverse proxy that keeps
connections alive (and may drop idle ones, or speak TLS), or a forward proxy (HTTP_PROXY). It counts the
connections it accepts and records each request line, for a test to see how cpctl reached the server."""

import http.client
import socket
import ssl
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "te", "upgrade"}


class Relay(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), Forward)
        self.upstream = urlsplit(upstream)
        self.tls = tls
        self.connections = 0
        self.requests: list[str] = []
        self.keys: list[str | None] = []  # each request's Idempotency-Key
        self.lose_answers = 0  # the next this many writes are relayed, and their answers dropped (the connection cut)
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def get_request(self):
        sock, address = super().get_request()
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_side=True)  # a client that distrusts it fails here
        return sock, address

    def drop_idle(self) -> None:
        """Close every connection now open, as a server does with the idle ones when their time is up; returns
        once their handlers have ended."""
        with self.lock:
            for sock in self.open:
                sock.shutdown(socket.SHUT_RDWR)
        while self.open:
            threading.Event().wait(0.01)


class Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, unless the client asks otherwise

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.open.add(self.connection)

    def finish(self):
        with self.server.lock:
            self.server.open.discard(self.connection)
        super().finish()

    def log_message(self, *args):
        pass

    def relay(self):
        self.server.requests.append(self.requestline)
        self.server.keys.append(self.headers.get("Idempotency-Key"))
        # A forward proxy is asked for an absolute URL; a reverse proxy for a path of its upstream.
        target = urlsplit(self.path) if "://" in self.path else None
        upstream = target or self.server.upstream
        path = (target.path + (f"?{target.query}" if target.query else "")) if target else self.path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            connection.request(self.command, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            content = answer.read()  # whole: the streams relayed here end (a run that has ended, a refusal)
        finally:
            connection.close()
        if self.command in ("POST", "PATCH") and self.server.lose_answers:
            with self.server.lock:
                self.server.lose_answers -= 1
            self.close_connection = True  # the server did the write; its answer never reaches the client
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_DELETE = relay


@contextmanager
def relay(upstream: str, tls: ssl.SSLContext | None = None):
    server = Relay(upstream, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
