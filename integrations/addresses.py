"""Where a webhook may be sent (server-side request forgery): a URL whose host resolves to a loopback, private,
link-local, multicast, reserved or unspecified address is refused, when the endpoint is created or changed and
again at every delivery, which then connects to the very address that was checked (a name that resolves to a
public address when checked and to 127.0.0.1 a moment later cannot redirect it). On-premises installs whose
receivers are private set CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE=1."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(Exception):
    """The URL may not be sent to; the message says why, naming the host (never the URL's path or query)."""


class Unresolved(AddressRefused):
    """The URL's host name does not resolve, now: a delivery tries again later (a name server can be down)."""


# Carrier-grade NAT's shared space: not private to Python's ipaddress, yet no public address either (and
# 100.100.100.200 is a cloud's instance metadata service).
SHARED = ipaddress.ip_network("100.64.0.0/10")
# IPv6 addresses that stand for an IPv4 one, which is what is checked: NAT64's well-known prefix (6to4 and
# IPv4-mapped addresses are read by ipaddress itself).
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (for the Host header and TLS's server name)
    port: int
    address: str  # the checked address to connect to
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def refusal(address: str) -> str | None:
    """Why `address` is no place for a webhook, or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif (embedded := ip.ipv4_mapped or ip.sixtofour) is not None:
            ip = embedded
    for kind, test in (
        ("a loopback", ip.is_loopback),
        ("a private", ip.is_private),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("an unspecified", ip.is_unspecified),
        ("a reserved", ip.is_reserved),
        ("a site-local", getattr(ip, "is_site_local", False)),
        ("a shared (carrier-grade NAT)", ip in SHARED),
        ("a non-public", not ip.is_global),
    ):
        if test:
            return f"{kind} address"
    return None


def target(url: str) -> Target:
    """Resolve `url`'s host and check every address it has; AddressRefused when any is private (unless allowed),
    Unresolved (an AddressRefused) when the name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise AddressRefused(f"{parts.netloc!r} has no valid port.") from e
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as e:  # no name server will ever know it
        raise AddressRefused(f"{host} is not a host name ({e.__class__.__name__}).") from e
    except OSError as e:
        raise Unresolved(f"{host} does not resolve ({e.__class__.__name__}).") from e
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if not addresses:
        raise Unresolved(f"{host} does not resolve.")
    if not settings.CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if why := refusal(address):
                raise AddressRefused(
                    f"{host} resolves to {address}, {why}; webhooks go to public addresses "
                    "(CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE=1 allows private ones, for on-premises receivers)."
                )
    path = parts.path or "/"
    return Target(parts.scheme, host, port, addresses[0], f"{path}?{parts.query}" if parts.query else path)
