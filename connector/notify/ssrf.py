"""Outbound URLs chosen by tenants (Slack webhooks, REST hook targets) checked against SSRF.

A tenant may name any URL; Deal Radar must never be made to call its own network: loopback,
private ranges, link-local (the cloud metadata service at 169.254.169.254 and fd00:ec2::254),
CGNAT, multicast, reserved and unspecified addresses, and every other range IANA lists as not
globally reachable (REFUSED_NETWORKS: 192.0.0.0/24 with Oracle Cloud's 192.0.0.192, fec0::/10,
documentation and benchmarking ranges...) are refused, as are IPv4 addresses embedded in IPv6
ones (mapped, NAT64, 6to4) that fall in those ranges. The check runs on the
addresses a name resolves to, not on the name, and `session()` connects to exactly the
addresses it checked, in the same call: a name that resolves to a public address when checked
and to a private one a moment later (DNS rebinding) cannot slip through, because the connection
never resolves the name again. TLS still verifies the certificate against the name.

Production refuses plain http and loopback; `OutboundPolicy(allow_http=True,
allow_loopback=True)` (DEALRADAR_OUTBOUND_ALLOW_HTTP, DEALRADAR_OUTBOUND_ALLOW_LOOPBACK) lets
tests and `make run` reach receivers on 127.0.0.1. Private and metadata addresses are refused
whatever the flags say.

Error policy: every refusal is one `UnsafeUrl` (a ValueError) whose message says what is wrong
and what to give instead; it is raised by `check` and, at delivery, out of `session()` requests
before any byte is sent. Resolution failures are `UnsafeUrl` too ("cannot be resolved").
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""socket.getaddrinfo's signature: (host, port, family, type, ...) -> [(family, type, proto,
canonname, sockaddr)]."""

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "192.0.0.192", "100.100.100.200")
)
"""Cloud instance metadata services (AWS, GCP, Azure, AWS's IPv6 one, Oracle Cloud's older
one, Alibaba Cloud's): named in refusals."""
REFUSED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified (this network) address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved (IETF protocol) address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved (6to4 relay) address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a reserved (benchmarking) address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),  # 255.255.255.255, the broadcast, included
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a reserved (IPv4-compatible) address"),
        ("64:ff9b:1::/48", "a reserved (local NAT64) address"),
        ("100::/64", "a reserved (discard) address"),
        ("100:0:0:1::/64", "a reserved (dummy) address"),
        ("2001::/23", "a reserved (IETF protocol) address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a reserved (SRv6) address"),
        ("fc00::/7", "a private address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
"""IANA's special-purpose ranges that are not globally reachable, refused by this list and not
only by `ipaddress`'s flags, which change between Python releases (3.11.7 calls 192.0.0.0/24,
Oracle Cloud's metadata address among them, and fec0::/10 global). IPv4 mapped, NAT64 and 6to4
addresses are checked by the IPv4 address they embed. Loopback comes first, for
`allow_loopback`."""
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048

log = logging.getLogger(__name__)


class UnsafeUrl(ValueError):
    """An outbound URL Deal Radar will not call; the message says why and what to give."""


@dataclass(frozen=True)
class OutboundPolicy:
    """What outbound URLs may be: https to public addresses only, unless relaxed for tests."""

    allow_http: bool = False
    allow_loopback: bool = False
    resolver: Resolver = field(default=socket.getaddrinfo, compare=False, repr=False)
    """Replaced in tests to make a name resolve to chosen addresses."""

    def check(self, url: str) -> list[Address]:
        """The addresses `url` resolves to, all of them allowed; UnsafeUrl otherwise."""
        host, port = self.parse(url)
        return self.resolve(host, port)

    def parse(self, url: str) -> tuple[str, int]:
        """(host, port) of a well-formed URL with an allowed scheme; UnsafeUrl otherwise."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise UnsafeUrl(f"give an https URL of at most {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeUrl("the URL cannot be read; give an https URL") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise UnsafeUrl(f"only {' or '.join(schemes)} URLs are called, not {parts.scheme!r}")
        if not parts.hostname:
            raise UnsafeUrl("the URL names no host")
        if parts.username or parts.password:
            raise UnsafeUrl("credentials in the URL are refused; sign requests instead")
        return parts.hostname, port or (443 if parts.scheme == "https" else 80)

    def resolve(self, host: str, port: int) -> list[Address]:
        try:
            infos = self.resolver(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"the host {host!r} cannot be resolved ({exc})") from None
        addresses: list[Address] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            reason = self.refusal(address)
            if reason:
                raise UnsafeUrl(_refused(host, address, reason))
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnsafeUrl(f"the host {host!r} resolves to no address")
        return addresses

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be called, or None when it may."""
        if address in METADATA:
            return "a cloud metadata address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = self.refusal(embedded)
            return f"which embeds {embedded}, {reason}" if reason else None
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        listed = next((reason for net, reason in REFUSED_NETWORKS if address in net), None)
        if listed:
            return listed
        if address.version == 4 and address in CGNAT:
            return "a carrier-grade NAT address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_unspecified:
            return "the unspecified address"
        if address.is_private:
            return "a private address"
        if address.is_reserved or not address.is_global:
            return "a reserved address"
        return None

    def session(self) -> requests.Session:
        """A requests session that connects only to addresses this policy allows, resolving
        each host once per connection and connecting to what it checked; no proxies from the
        environment (a proxy would make the check moot), no redirects followed by callers
        (pass allow_redirects=False)."""
        s = requests.Session()
        s.trust_env = False
        adapter = _GuardedAdapter(self)
        s.mount("https://", adapter)
        s.mount("http://", adapter if self.allow_http else _Refuse())
        return s


def _refused(host: str, address: Address, reason: str) -> str:
    """The refusal a tenant reads. A host given by name is refused without the address it
    resolved to: naming it would let anyone who may set a hook URL map our internal DNS, one
    name at a time. The address goes to our own log instead."""
    try:
        literal = ipaddress.ip_address(host) == address
    except ValueError:
        literal = False
    if literal:
        shown = f"{address}, {reason}"
    else:
        log.warning("outbound URL refused: %r resolves to %s, %s", host, address, reason)
        shown = reason.rsplit(", ", 1)[-1]  # "which embeds 10.0.0.8, a private address"
    return f"the host {host!r} resolves to {shown}; outbound calls go to public addresses only"


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _connect(conn: HTTPConnection, policy: OutboundPolicy) -> socket.socket:
    """Resolve and check the connection's host, then connect to a checked address."""
    addresses = policy.resolve(conn.host, conn.port)
    last: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if isinstance(conn.timeout, int | float):  # else urllib3's "default" sentinel
                sock.settimeout(conn.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((str(address), conn.port))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last}")


class _GuardedHTTPConnection(HTTPConnection):
    policy: OutboundPolicy

    def _new_conn(self) -> socket.socket:
        return _connect(self, self.policy)


class _GuardedHTTPSConnection(HTTPSConnection):
    policy: OutboundPolicy

    def _new_conn(self) -> socket.socket:
        return _connect(self, self.policy)


class _GuardedAdapter(HTTPAdapter):
    """requests' adapter with pools whose connections go through `_connect`."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type("_Conn", (_GuardedHTTPConnection,), {"policy": self._policy})
        https = type("_TlsConn", (_GuardedHTTPSConnection,), {"policy": self._policy})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("_Pool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("_TlsPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


class _Refuse(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        raise UnsafeUrl("only https URLs are called")
