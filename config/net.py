"""Which address is this really: the client IP behind trusted proxies, and outbound addresses vetted and pinned.

``client_ip`` is the one answer to "who sent this request" for every throttle, lockout and log line (DRF's
throttles read the same ``NUM_PROXIES`` through ``REST_FRAMEWORK["NUM_PROXIES"]``, django-axes calls
``client_ip`` through ``AXES_CLIENT_IP_CALLABLE``). ``PinnedTransport`` lets an outbound request connect only
to an address that was vetted as public when the request is sent, so a DNS answer that changes between the
check and the connection (rebinding) cannot reach an internal service.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from config.caches import Memo

# --- the client IP -----------------------------------------------------------------------------


def client_ip_from(remote_addr: str, forwarded_for: str | None, num_proxies: int | None = None) -> str:
    """The client's address given the peer address and the X-Forwarded-For header.

    With no trusted proxy (``NUM_PROXIES=0``, the default) the header is ignored: anyone can write it. Behind N
    trusted proxies, each appends the address it received the request from, so the N-th entry from the right is
    the address the outermost proxy saw (the client); entries further left are whatever the client sent. An entry
    that is not an IP address (a misconfigured proxy) falls back to the peer address.
    """
    proxies = settings.NUM_PROXIES if num_proxies is None else num_proxies
    if proxies <= 0 or not forwarded_for:
        return remote_addr
    entries = forwarded_for.split(",")
    candidate = entries[-min(proxies, len(entries))].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr


def client_ip(request) -> str:
    """The client IP of a Django (or DRF) request; also django-axes' ``AXES_CLIENT_IP_CALLABLE``."""
    meta = request.META
    return client_ip_from(meta.get("REMOTE_ADDR") or "", meta.get("HTTP_X_FORWARDED_FOR"))


def scope_client_ip(scope) -> str:
    """The client IP of an ASGI HTTP scope (the EA fast path, which runs before Django builds a request)."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    if settings.NUM_PROXIES <= 0:
        return peer
    # Repeated headers are joined in order, as Django does for request.META.
    forwarded = b",".join(value for name, value in scope.get("headers", ()) if name.lower() == b"x-forwarded-for")
    return client_ip_from(peer, forwarded.decode("latin-1") or None)


# Host header answers, keyed by (ALLOWED_HOSTS, DEBUG, Host): a steady client costs one lookup.
HOSTS_SEEN: Memo[bool] = Memo("config.net.hosts_seen", size=1024)


def scope_host_allowed(scope) -> bool:
    """``HttpRequest.get_host()``'s check for an ASGI HTTP scope, before Django builds a request: the Host (or, with
    USE_X_FORWARDED_HOST, X-Forwarded-Host) against ``ALLOWED_HOSTS`` with ``validate_host``; with DEBUG and no
    hosts, the local names. An HTTP/1.0 request without Host is judged by the server's name and port, as Django
    does."""
    headers = dict(scope.get("headers", ()))
    raw = (settings.USE_X_FORWARDED_HOST and headers.get(b"x-forwarded-host")) or headers.get(b"host")
    if raw is None:
        name, port = scope.get("server") or ("unknown", None)
        default = 443 if scope.get("scheme") == "https" else 80
        raw = (name if port in (None, default) else f"{name}:{port}").encode("latin-1")
    allowed, debug = settings.ALLOWED_HOSTS, settings.DEBUG

    def check() -> bool:
        domain, _ = split_domain_port(raw.decode("latin-1"))
        return bool(domain) and validate_host(
            domain, allowed or ([".localhost", "127.0.0.1", "[::1]"] if debug else [])
        )

    return HOSTS_SEEN.get_or_build((tuple(allowed), debug, raw), check)


# --- outbound addresses ------------------------------------------------------------------------

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): not the internet


class AddressRefused(Exception):
    """An outbound request would reach an address that is not public (loopback, private, CGNAT ...)."""


def refused_because(address: str) -> str | None:
    """Why an outbound request must not connect to ``address``, or None for a public address.

    IPv4 addresses carried inside IPv6 (``::ffff:127.0.0.1``, 6to4) are judged by the IPv4 address they reach.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            reason = refused_because(str(embedded))
            return f"{reason} (as {embedded})" if reason else None
    for reason, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared CGNAT space", ip.version == 4 and ip in SHARED_ADDRESS_SPACE),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("not globally routable", not ip.is_global),
    ):
        if hit:
            return reason
    return None


def resolve_vetted(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """The addresses ``host`` resolves to now, every one vetted (``AddressRefused`` names the first that is not
    public) unless ``allow_private``. ``socket.gaierror`` when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise socket.gaierror(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            reason = refused_because(address)
            if reason:
                raise AddressRefused(f"{host} resolves to {address}, a {reason} address")
    return addresses


class PinnedTransport(httpx.BaseTransport):
    """Resolves the request's host when it is sent, vets the addresses, and connects to the first one.

    The request keeps its Host header, and for HTTPS its SNI and certificate check use the original name (httpcore's
    ``sni_hostname``), so only the address it connects to is fixed. Redirects, if a client followed them, pass
    through here again. ``inner`` is the transport that does the I/O (tests give a recording one).
    """

    def __init__(self, *, allow_private: bool = False, inner: httpx.BaseTransport | None = None):
        self.allow_private = allow_private
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")  # IDNA-encoded; IPv6 without brackets
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            address = resolve_vetted(host, port, allow_private=self.allow_private)[0]
        except socket.gaierror as exc:
            raise httpx.ConnectError(f"{host} does not resolve: {exc}", request=request) from exc
        if address != host:
            request.url = url.copy_with(host=address)
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
