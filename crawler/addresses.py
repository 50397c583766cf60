"""Which addresses newswatch may connect to: the public internet, and the hosts the user named.

A feed, a sitemap or a redirect is written by whoever runs the site, and it can point anywhere:
at a cloud metadata service, a router's admin page, a database on the LAN. Every outbound
connection is checked on the address it is about to use, after name resolution, so a name that
resolves to a public address when a listing is read and to a private one when the page is
fetched (DNS rebinding) is refused too. The hosts of configured sources (and, on the command
line, of the URL the user typed) are trusted by name: a user who points newswatch at an
intranet feed means it.

Scrapy: every connection of Twisted's HTTP client goes through a `HostnameEndpoint`, which asks
the reactor's name resolver for addresses (IP literals included) and connects only to what it
answers. `AddressGuard` wraps that resolver and drops refused addresses, so the check and the
connection use the very same address list; `AddressPolicyMiddleware` installs it and turns the
resulting "no address" failure into a `RefusedAddress` that says why. httpx (`newswatch add`,
`newswatch match URL`): `GuardedBackend` resolves, checks and connects to the checked address.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.http import Request
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.interfaces import IAddress, IHostnameResolver, IResolutionReceiver
from zope.interface import implementer, provider

log = logging.getLogger("newswatch.addresses")

SETTING = "NEWSWATCH_ADDRESS_POLICY"
MAX_REMEMBERED_REFUSALS = 256
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_FIX = "set crawl.allow_private_networks or add the host as a source"


class RefusedAddress(IgnoreRequest):
    """A fetch refused because its host resolved only to addresses newswatch may not reach."""


@dataclass(frozen=True)
class AddressPolicy:
    """Global addresses always; any address for `trusted_hosts`; any at all with `allow_private`."""

    trusted_hosts: frozenset[str] = frozenset()
    allow_private: bool = False

    @classmethod
    def for_sources(
        cls, urls: Iterable[str], allow_private: bool, also: Iterable[str] = ()
    ) -> AddressPolicy:
        hosts = {host_of(url) for url in (*urls, *also)}
        return cls(frozenset(hosts - {""}), allow_private)

    def refusal(self, host: str, address: str) -> str | None:
        """Why connecting to `address` for `host` is refused, or None when it is allowed."""
        if self.allow_private or host.lower().rstrip(".") in self.trusted_hosts:
            return None
        kind = address_kind(address)
        if kind is None:
            return None
        return f"refused: {address} is {kind}; {_FIX}"


def host_of(url: str) -> str:
    """The host a URL names; "" for a URL with none or a malformed one (`http://[::1/x`), which
    is then trusted for nothing."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def address_kind(address: str) -> str | None:
    """What kind of non-public address this is ("a private address"), or None for a public one.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by that address: a
    resolver answering ::ffff:10.0.0.5 must not reach 10.0.0.5 under another name. Python
    counts some multicast ranges (224.0.0.0/4 outside its special blocks) as global."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    ip = _embedded_ipv4(ip) or ip
    if ip.is_global and not ip.is_multicast:
        return None
    for test, kind in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, test):
            return kind
    if ip.version == 4 and ip in _SHARED:
        return "a carrier-grade NAT address"
    return "not a public address"


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Any:
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# Scrapy / Twisted


@implementer(IHostnameResolver)
class AddressGuard:
    """The reactor's name resolver, minus the addresses the policy refuses.

    Refusals are remembered per host (a bounded number) so that the failed download can say
    which address was refused and why, not just "no address"."""

    def __init__(self, resolver: Any, policy: AddressPolicy) -> None:
        self.resolver = resolver
        self.policy = policy
        self._refusals: OrderedDict[str, str] = OrderedDict()

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:
        receiver = _Checked(resolutionReceiver, hostName, self)
        return self.resolver.resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )

    def refused(self, host: str, reason: str) -> None:
        self._refusals[host] = reason
        self._refusals.move_to_end(host)
        while len(self._refusals) > MAX_REMEMBERED_REFUSALS:
            self._refusals.popitem(last=False)

    def forget(self, host: str) -> None:
        self._refusals.pop(host, None)

    def refusal_for(self, host: str) -> str | None:
        return self._refusals.get(host)


@provider(IResolutionReceiver)
class _Checked:
    def __init__(self, receiver: Any, host: str, guard: AddressGuard) -> None:
        self.receiver = receiver
        self.host = host
        self.guard = guard

    def resolutionBegan(self, resolution: Any) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        reason = self.guard.policy.refusal(self.host, str(getattr(address, "host", "")))
        if reason is None:
            self.guard.forget(self.host)
            self.receiver.addressResolved(address)
        else:
            self.guard.refused(self.host, reason)

    def resolutionComplete(self) -> None:
        self.receiver.resolutionComplete()


def guard_reactor(policy: AddressPolicy) -> AddressGuard:
    """Install the guard on the running reactor once; a later crawl only updates its policy.

    Scrapy installs its own resolver (TWISTED_DNS_RESOLVER) only from CrawlerProcess, not from
    the AsyncCrawlerRunner the daemon uses, so nothing replaces the guard once it is in place."""
    from twisted.internet import reactor

    current = reactor.nameResolver  # type: ignore[attr-defined]
    if isinstance(current, AddressGuard):
        current.policy = policy
        return current
    guard = AddressGuard(current, policy)
    reactor.installNameResolver(guard)  # type: ignore[attr-defined]
    return guard


class AddressPolicyMiddleware:
    """Guards every crawl's connections, and names the refused address when one was the reason
    a download failed. Placed after the politeness gate (nearer the download), so the gate has
    given its slot back before the error is replaced, and before retries, which would only be
    refused again."""

    def __init__(self, crawler: Crawler) -> None:
        self.guard = guard_reactor(crawler.settings[SETTING])

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressPolicyMiddleware:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if not isinstance(exception, CannotResolveHostError):
            return
        reason = self.guard.refusal_for(urlparse_cached(request).hostname or "")
        if reason is not None:
            raise RefusedAddress(reason)


# httpx


class RefusedConnect(httpcore.ConnectError):
    """Every address of the host was refused by the policy (the message says why)."""


class GuardedBackend(httpcore.SyncBackend):
    """Resolve, check every address, connect to the first allowed one that answers. TLS still
    uses the host name (httpcore passes it as server_hostname), so certificates are verified
    against the name, not the address."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        allowed, reasons = self._addresses(host, port)
        if not allowed:
            if reasons:
                raise RefusedConnect(reasons[0])
            raise httpcore.ConnectError(f"{host}: no address")
        error: Exception | None = None
        for address in allowed:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def _addresses(self, host: str, port: int) -> tuple[list[str], list[str]]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: cannot resolve ({exc})") from None
        allowed: list[str] = []
        reasons: list[str] = []
        for info in infos:
            address = str(info[4][0])
            reason = self.policy.refusal(host, address)
            if reason is not None:
                reasons.append(reason)
            elif address not in allowed:
                allowed.append(address)
        return allowed, reasons


def guarded_transport(policy: AddressPolicy) -> httpx.HTTPTransport:
    """httpx's transport with its connection pool built on `GuardedBackend`: httpx takes no
    network backend, httpcore's pool does, so the pool is replaced; every redirect hop opens
    its connections through it."""
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(policy)
    )
    return transport
