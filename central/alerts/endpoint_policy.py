"""Where push may send: https to public addresses only, unless the admin's allow-list says so.

A push endpoint or webhook URL is chosen by a user, and central, not the user, makes the
request: without a check any user could make central POST into its own network (SSRF) and
read the answer. Every address a host name resolves to is checked, at registration and again
at delivery (a name may be re-pointed in between), and the delivery connects only to checked
addresses (`PolicyResolver`), so a name that resolves differently the second time cannot slip
through. Redirects are never followed (the dispatcher posts with `allow_redirects=False`).

Public means `ipaddress`'s `is_global` and not multicast; an IPv4 address mapped into IPv6
(or 6to4/Teredo-wrapped) is judged by the IPv4 address it carries. Networks listed in
`push.allow_networks` are allowed even though private, and only to them plain http is allowed
too (an internal relay); nothing else ever is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from central.errors import EndpointRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def effective_address(address: IpAddress) -> IpAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address."""
    inner = effective_address(address)
    return inner.is_global and not inner.is_multicast and address.is_global


class EndpointPolicy:
    """The rule every push endpoint and webhook URL must pass."""

    def __init__(self, allow_networks: Iterable[IpNetwork] = ()) -> None:
        self.allow_networks: tuple[IpNetwork, ...] = tuple(allow_networks)

    def allowed_private(self, address: IpAddress) -> bool:
        """True if the admin's allow-list names a network holding `address`."""
        inner = effective_address(address)
        return any(inner in net or address in net for net in self.allow_networks)

    def address_ok(self, address: IpAddress) -> bool:
        """True if push may connect to `address`."""
        return is_public(address) or self.allowed_private(address)

    def check_addresses(self, url: str, addresses: Sequence[IpAddress]) -> None:
        """EndpointRefused unless every address is allowed (and http only to the allow-list)."""
        if not addresses:
            raise EndpointRefused("the endpoint's host name does not resolve")
        bad = [a for a in addresses if not self.address_ok(a)]
        if bad:
            raise EndpointRefused(
                "push endpoints must be public addresses; "
                "private, loopback and link-local addresses are refused"
            )
        if urlsplit(url).scheme == "http" and not all(self.allowed_private(a) for a in addresses):
            raise EndpointRefused("push endpoints must use https")

    async def check(self, url: str) -> list[IpAddress]:
        """Check the URL's form and every address it resolves to now; the addresses."""
        host, port = split_endpoint(url)
        addresses = await resolve(host, port)
        self.check_addresses(url, addresses)
        return addresses


def split_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials; EndpointRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise EndpointRefused(f"not a valid URL: {e}") from e
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointRefused("the endpoint must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("the endpoint URL must not carry a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` has now (a literal address is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise EndpointRefused(f"the endpoint's host {host!r} does not resolve") from e
    out: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in out:
            out.append(address)
    return out


class PolicyResolver(AbstractResolver):
    """aiohttp resolver for push: resolves, then refuses the host if any address is not allowed.

    This is what makes the delivery-time check binding: the connection goes to an address
    that was checked in the same step, never to one a second DNS answer supplies.
    """

    def __init__(self, policy: EndpointPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, all checked; EndpointRefused if any is not allowed."""
        addresses = await resolve(host, port)
        if not addresses:
            raise EndpointRefused(f"the endpoint's host {host!r} does not resolve")
        bad = [a for a in addresses if not self._policy.address_ok(a)]
        if bad:
            raise EndpointRefused(f"push to {host} refused: it resolves to a non-public address")
        results: list[ResolveResult] = []
        for a in addresses:
            fam = socket.AF_INET6 if a.version == 6 else socket.AF_INET
            results.append(
                {
                    "hostname": host,
                    "host": str(a),
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        """Nothing to release."""


def policy_session_kwargs(policy: EndpointPolicy) -> dict[str, Any]:
    """Keyword arguments of the ClientSession push uses (connector with the policy resolver)."""
    return {"connector": aiohttp.TCPConnector(resolver=PolicyResolver(policy))}
