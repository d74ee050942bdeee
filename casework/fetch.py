"""A guarded HTTP GET for re-checks: one URL, bounded in size, time and redirects, and never
to a private network address (SSRF). Made for the nightly re-check of reported URLs; crawls
use the crawler's own fetcher.

Every hop's host is resolved once, each address is checked, and the connection goes to that
checked address (the Host header and TLS name stay the URL's), so DNS rebinding between
check and connect cannot slip past. Loopback is allowed only when asked (tests, local use).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

USER_AGENT = "ansim-recheck/0.1 (takedown verification)"
REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float = 15.0  # per connect/read, and for the whole body
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5
    allow_loopback: bool = False


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None  # set when no HTTP answer came back (or it was cut short)

    @property
    def answered(self) -> bool:
        return self.error is None and self.status is not None


class Refused(OSError):
    pass


def address_refusal(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool
) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved:
        return "private or reserved"
    if ip.is_unspecified or not ip.is_global:
        return "non-global"
    return None


def resolve_checked(host: str, port: int, allow_loopback: bool) -> str:
    """The first address of `host` the policy allows; Refused when it has none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from exc
    reasons = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        reason = address_refusal(ipaddress.ip_address(address), allow_loopback)
        if reason is None:
            return address
        reasons.append(f"{address} ({reason})")
    raise Refused(f"refused to connect to {host}: {', '.join(reasons)}")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch(url: str, limits: FetchLimits = FetchLimits()) -> FetchResult:
    """GET `url`, following redirects; errors come back in the result, never raised."""
    current = url
    deadline = time.monotonic() + limits.timeout_s
    try:
        for _ in range(limits.max_redirects + 1):
            status, headers, body = _get_once(current, limits, deadline)
            location = headers.get("location")
            if status in REDIRECT_CODES and location:
                current = urljoin(current, location)
                continue
            return FetchResult(url, current, status, headers.get("content-type"), body)
        return FetchResult(url, current, error=f"more than {limits.max_redirects} redirects")
    except Refused as exc:
        return FetchResult(url, current, error=str(exc))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return FetchResult(url, current, error=f"{type(exc).__name__}: {exc}".rstrip(": "))


def _get_once(url: str, limits: FetchLimits, deadline: float) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve_checked(parts.hostname, port, limits.allow_loopback)
    connection_type = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_type(parts.hostname, port, address, limits.timeout_s)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        body = bytearray()
        while chunk := response.read1(64 * 1024):
            body += chunk
            if len(body) > limits.max_bytes:
                raise ValueError(f"body larger than {limits.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no complete answer within {limits.timeout_s:g} s")
        return response.status, headers, bytes(body)
    finally:
        connection.close()
