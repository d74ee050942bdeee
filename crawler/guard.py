"""SSRF guard: which network addresses a crawl may connect to.

Crawled pages are hostile input, and a link or redirect to 10.0.0.1, 169.254.169.254 or
localhost must not turn the crawler into a probe of the network it runs in. The check is
made on the address actually connected to: names are resolved through `GuardedResolver`,
which drops refused addresses before aiohttp sees them (no re-resolution in between, so
DNS rebinding cannot slip past), and literal IPs in URLs, which aiohttp never resolves,
are checked by `check_host` before each hop.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(OSError):
    """The destination is on a network a crawl must not reach.

    An OSError so that aiohttp carries it through its connector errors unchanged
    (as `ClientConnectorDNSError.os_error`).
    """


@dataclass(frozen=True)
class AddressPolicy:
    """Only globally routable unicast addresses, plus loopback when `allow_loopback`.

    `allow_loopback` is for tests and local use: 127.0.0.0/8 and ::1 only; private,
    link-local, multicast and reserved ranges stay refused whatever it says.
    """

    allow_loopback: bool = False

    def refusal(self, ip: IpAddress) -> str | None:
        """Why `ip` is refused, or None when it may be connected to."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return self.refusal(ip.ipv4_mapped)
        if ip.is_loopback:
            return None if self.allow_loopback else "loopback address"
        if ip.is_unspecified:
            return "unspecified address"
        if ip.is_multicast:
            return "multicast address"
        if ip.is_link_local:
            return "link-local address"
        if ip.is_private:
            return "private address"
        if ip.is_reserved:
            return "reserved address"
        if not ip.is_global:
            # Shared address space (100.64/10), documentation ranges, 6to4 relays...
            return "non-global address"
        return None

    def check_ip(self, address: str) -> IpAddress:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reason = self.refusal(ip)
        if reason is not None:
            mapped = getattr(ip, "ipv4_mapped", None)
            shown = f"{mapped} (as {ip})" if mapped is not None else str(ip)
            raise BlockedAddress(f"refused {reason} {shown}")
        return ip

    def check_host(self, host: str) -> None:
        """Refuse a literal-IP host that is not allowed; names are left to the resolver."""
        literal = parse_ip_literal(host)
        if literal is not None:
            self.check_ip(str(literal))
            return
        name = host.lower().rstrip(".")
        # RFC 6761: these names are loopback whatever a resolver says.
        is_loopback_name = name in ("localhost", "localhost.localdomain") or name.endswith(
            ".localhost"
        )
        if is_loopback_name and not self.allow_loopback:
            raise BlockedAddress(f"refused loopback name {host}")


def parse_ip_literal(host: str) -> IpAddress | None:
    """The IP a URL host denotes literally (brackets stripped), else None.

    Legacy numeric forms (2130706433, 0x7f.1, 127.1) are read the way inet_aton reads
    them, so they cannot dodge the policy by looking like a name.
    """
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    if bare and all(c in "0123456789abcdefxABCDEFX." for c in bare) and bare[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


class GuardedResolver(AbstractResolver):
    """Resolves through the system resolver, then keeps only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.policy.check_host(host)
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            try:
                self.policy.check_ip(result["host"])
            except BlockedAddress as exc:
                reasons.append(str(exc))
                continue
            allowed.append(result)
        if not allowed:
            raise BlockedAddress(f"{host} resolves only to refused addresses: {'; '.join(reasons)}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
