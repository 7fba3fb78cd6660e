"""Is the web server's port free? Standard library only, so `make run` and `make serve` can ask before they
install or migrate anything: `python3 controlplane/portcheck.py HOST PORT` prints one line and exits 1 when taken."""

from __future__ import annotations

import errno
import socket
import sys


def port_in_use_message(host: str, port: int) -> str | None:
    """None when HOST:PORT can be bound (as gunicorn binds it: SO_REUSEADDR, so TIME_WAIT is no
    obstacle), else one line naming it and how to choose another."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return f"cannot listen on {host} port {port}: {error.strerror}"
            other = port + 1 if port < 65535 else 8000
            return f"port {port} on {host} is in use; choose another with PORT={other}"
    return None


def split_addrport(addrport: str) -> tuple[str, int]:
    """`manage.py web` and `serve`'s argument: "PORT", "HOST:PORT" or "[IPV6]:PORT"."""
    host, _, port = addrport.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


if __name__ == "__main__":
    message = port_in_use_message(sys.argv[1], int(sys.argv[2]))
    if message:
        print(message, file=sys.stderr)
        sys.exit(1)
