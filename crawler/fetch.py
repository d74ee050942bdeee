"""The fetcher: one URL in, one classified outcome out, whatever the server does.

Streaming and bounded: the body goes to a temporary file chunk by chunk while it is
hashed, and the transfer is aborted the moment it passes the size cap (raw or decoded),
so a 2 GB body or a gzip bomb costs at most the cap. Redirects are followed by hand so
that each hop passes the SSRF guard, the caller's `permit` check (scope, robots), the
redirect limit and loop detection. Transient failures (timeouts, resets, 429, 5xx) are
retried with exponential backoff, honouring Retry-After. Every request goes through the
host's politeness slot.

The raw bytes as received are kept beside the decoded ones: they are what a WARC
response record must hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from ansim.crawler.guard import AddressPolicy, BlockedAddress, GuardedResolver
from ansim.crawler.politeness import Politeness
from ansim.crawler.urls import host_key, normalize_url

log = logging.getLogger("ansim.crawler.fetch")

USER_AGENT = "ansim-crawler/0.1 (+victim-support takedown crawler)"
CHUNK_BYTES = 64 << 10
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_GZIP_MEMBERS = 16

# Outcomes: every fetch ends in exactly one of these.
OK = "ok"
HTTP_ERROR = "http_error"
TOO_LARGE = "too_large"
TIMEOUT = "timeout"
BLOCKED = "blocked_address"
NOT_PERMITTED = "not_permitted"
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
CONNECTION_ERROR = "connection_error"
BAD_URL = "bad_url"
BAD_ENCODING = "bad_encoding"
THROTTLED = "throttled"


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout_s: float = 10.0
    # Longest silence between two reads of the body.
    read_timeout_s: float = 20.0
    # One request, from sending it to the last body byte (beats slow drips).
    total_timeout_s: float = 60.0
    max_redirects: int = 5
    max_bytes: int = 64 << 20
    retries: int = 2
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # A Retry-After longer than this ends the fetch as THROTTLED instead of waiting.
    max_retry_after_s: float = 120.0


@dataclass
class Exchange:
    """One HTTP request and its response, as a WARC request+response pair records it."""

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    status: int
    reason: str
    http_version: str
    response_headers: list[tuple[str, str]]
    fetched_at: datetime
    resolved_ip: str | None
    raw_path: Path | None = None  # body bytes exactly as received (still content-encoded)
    raw_sha256: str | None = None
    raw_size: int = 0


@dataclass
class FetchResult:
    url: str
    outcome: str
    error: str = ""
    final_url: str | None = None
    status: int | None = None
    content_type: str = ""
    # The decoded body (Content-Encoding undone); same file as raw when not encoded.
    body_path: Path | None = None
    size: int = 0
    sha256: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    attempts: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def resolved_ip(self) -> str | None:
        return self.exchanges[-1].resolved_ip if self.exchanges else None

    @property
    def fetched_at(self) -> datetime | None:
        return self.exchanges[-1].fetched_at if self.exchanges else None

    def read_body(self, limit: int | None = None) -> bytes:
        if self.body_path is None:
            return b""
        with open(self.body_path, "rb") as handle:
            return handle.read(-1 if limit is None else limit)

    def discard(self) -> None:
        """Delete the temporary body files (hash-only: unmatched media is dropped)."""
        paths = {self.body_path} | {e.raw_path for e in self.exchanges}
        for path in paths:
            if path is not None:
                path.unlink(missing_ok=True)
        self.body_path = None
        for exchange in self.exchanges:
            exchange.raw_path = None


class FetchFailure(Exception):
    """One attempt ended without a usable response; `outcome` classifies it."""

    def __init__(self, outcome: str, message: str, retry: bool, retry_after: float | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.retry = retry
        self.retry_after = retry_after


Permit = Callable[[str], Awaitable[str | None]]


class Fetcher:
    """Use as `async with Fetcher(...) as fetcher: result = await fetcher.fetch(url)`."""

    def __init__(
        self,
        work_dir: Path | None = None,
        limits: FetchLimits | None = None,
        policy: AddressPolicy | None = None,
        politeness: Politeness | None = None,
        user_agent: str = USER_AGENT,
        max_connections: int = 64,
        dns: AbstractResolver | None = None,
    ) -> None:
        self.limits = limits or FetchLimits()
        self.policy = policy or AddressPolicy()
        self.politeness = politeness or Politeness()
        self.user_agent = user_agent
        self.max_connections = max_connections
        # The resolver behind the guard (default: the system's); tests pin names with it.
        self.dns = dns
        self._own_work_dir: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._own_work_dir = tempfile.TemporaryDirectory(prefix="ansim-fetch-")
            work_dir = Path(self._own_work_dir.name)
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.outcomes: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy, self.dns),
            limit=self.max_connections,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Proxies from the environment would route around the address guard.
            trust_env=False,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._own_work_dir is not None:
            self._own_work_dir.cleanup()

    async def fetch(
        self, url: str, permit: Permit | None = None, max_bytes: int | None = None
    ) -> FetchResult:
        """Fetch `url`, following redirects; never raises for anything the server does."""
        started = time.monotonic()
        result = await self._fetch_chain(url, permit, max_bytes or self.limits.max_bytes)
        result.elapsed_s = time.monotonic() - started
        self.outcomes[result.outcome] += 1
        if not result.ok:
            log.info("fetch %s: %s (%s)", url, result.outcome, result.error)
            result.discard()
        return result

    async def _fetch_chain(self, url: str, permit: Permit | None, max_bytes: int) -> FetchResult:
        current = normalize_url(url)
        if current is None:
            return FetchResult(url=url, outcome=BAD_URL, error="not an http(s) URL")
        seen = {current}
        result = FetchResult(url=url, outcome=OK)
        for hop in range(self.limits.max_redirects + 1):
            if hop > 0 and permit is not None:
                refusal = await permit(current)
                if refusal:
                    result.outcome, result.error = (
                        NOT_PERMITTED,
                        f"redirect to {current}: {refusal}",
                    )
                    return result
            try:
                exchange, body = await self._request_with_retries(current, max_bytes, result)
            except FetchFailure as failure:
                result.outcome, result.error = failure.outcome, str(failure)
                return result
            result.exchanges.append(exchange)
            result.status = exchange.status
            location = _header(exchange.response_headers, "location")
            if exchange.status in REDIRECT_STATUSES and location is not None:
                target = normalize_url(location, base=current)
                if target is None:
                    result.outcome = BAD_URL
                    result.error = f"redirect to a non-http(s) location {location[:200]!r}"
                    return result
                if target in seen:
                    result.outcome, result.error = REDIRECT_LOOP, f"redirect loop back to {target}"
                    return result
                seen.add(target)
                current = target
                continue
            result.final_url = current
            result.content_type = _header(exchange.response_headers, "content-type") or ""
            if body is not None:
                result.body_path, result.size, result.sha256 = body
            if exchange.status >= 400:
                result.outcome, result.error = HTTP_ERROR, f"HTTP {exchange.status}"
            return result
        result.outcome = TOO_MANY_REDIRECTS
        result.error = f"more than {self.limits.max_redirects} redirects"
        return result

    async def _request_with_retries(
        self, url: str, max_bytes: int, result: FetchResult
    ) -> tuple[Exchange, tuple[Path, int, str] | None]:
        limits = self.limits
        throttle = self.politeness.host(host_key(url))
        for attempt in range(limits.retries + 1):
            result.attempts += 1
            try:
                return await self._request_once(url, max_bytes, attempt == limits.retries)
            except FetchFailure as failure:
                if not failure.retry or attempt == limits.retries:
                    raise
                wait = failure.retry_after
                if wait is None:
                    wait = min(limits.backoff_max_s, limits.backoff_base_s * 2**attempt)
                    wait *= random.uniform(0.5, 1.5)
                elif wait > limits.max_retry_after_s:
                    raise FetchFailure(
                        THROTTLED, f"server asks to wait {wait:.0f} s (Retry-After)", retry=False
                    ) from failure
                else:
                    throttle.hold_off(wait)
                log.debug("retry %s in %.2f s after %s", url, wait, failure)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _request_once(
        self, url: str, max_bytes: int, last_attempt: bool
    ) -> tuple[Exchange, tuple[Path, int, str] | None]:
        """One HTTP exchange under the host's politeness slot; raises FetchFailure."""
        assert self._session is not None, "use the Fetcher as an async context manager"
        limits = self.limits
        try:
            self.policy.check_host(urlsplit(url).hostname or "")
        except (BlockedAddress, ValueError) as exc:
            raise FetchFailure(BLOCKED, str(exc), retry=False) from exc
        throttle = self.politeness.host(host_key(url))
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s
        )
        async with throttle.slot():
            started = time.monotonic()
            try:
                async with asyncio.timeout(limits.total_timeout_s):
                    async with self._session.get(
                        url, allow_redirects=False, timeout=timeout
                    ) as response:
                        latency = time.monotonic() - started
                        throttle.record_response(latency, response.status)
                        exchange = _exchange_from(response, url, self.policy)
                        if response.status in RETRY_STATUSES and not last_attempt:
                            raise FetchFailure(
                                HTTP_ERROR,
                                f"HTTP {response.status}",
                                retry=True,
                                retry_after=_retry_after(response.headers.get("Retry-After")),
                            )
                        if response.status in REDIRECT_STATUSES:
                            return exchange, None
                        body = await self._read_body(response, exchange, max_bytes)
                        return exchange, body
            except FetchFailure:
                raise
            except TimeoutError as exc:
                throttle.record_failure()
                raise FetchFailure(
                    TIMEOUT, f"no complete response within the time limits ({exc!r})", retry=True
                ) from exc
            except aiohttp.ClientConnectorDNSError as exc:
                if isinstance(exc.os_error, BlockedAddress):
                    raise FetchFailure(BLOCKED, str(exc.os_error), retry=False) from exc
                raise FetchFailure(CONNECTION_ERROR, f"DNS: {exc}", retry=False) from exc
            except BlockedAddress as exc:
                raise FetchFailure(BLOCKED, str(exc), retry=False) from exc
            except (aiohttp.InvalidURL, ValueError) as exc:
                raise FetchFailure(BAD_URL, f"invalid URL: {exc}", retry=False) from exc
            except (aiohttp.ClientError, OSError) as exc:
                throttle.record_failure()
                raise FetchFailure(CONNECTION_ERROR, f"{type(exc).__name__}: {exc}", True) from exc

    async def _read_body(
        self, response: aiohttp.ClientResponse, exchange: Exchange, max_bytes: int
    ) -> tuple[Path, int, str]:
        declared = response.content_length
        if declared is not None and declared > max_bytes:
            raise FetchFailure(
                TOO_LARGE, f"declared {declared:,} bytes, over the cap of {max_bytes:,}", False
            )
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        decoder = _decoder_for(encoding)
        raw_path = _new_temp(self.work_dir, ".raw")
        decoded_path = raw_path if decoder is None else _new_temp(self.work_dir, ".body")
        raw_digest, decoded_digest = hashlib.sha256(), hashlib.sha256()
        raw_size = decoded_size = 0
        try:
            with contextlib.ExitStack() as files:
                raw_file = files.enter_context(open(raw_path, "wb"))
                decoded_file = (
                    raw_file if decoder is None else files.enter_context(open(decoded_path, "wb"))
                )
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    raw_size += len(chunk)
                    if raw_size > max_bytes:
                        raise FetchFailure(
                            TOO_LARGE, f"body passed the cap of {max_bytes:,} bytes", False
                        )
                    raw_file.write(chunk)
                    raw_digest.update(chunk)
                    if decoder is None:
                        continue
                    for piece in decoder.feed(chunk):
                        decoded_size += len(piece)
                        if decoded_size > max_bytes:
                            raise FetchFailure(
                                TOO_LARGE,
                                f"{encoding} body inflates past the cap of {max_bytes:,} bytes "
                                f"(decompression bomb?) after {raw_size:,} bytes received",
                                False,
                            )
                        decoded_file.write(piece)
                        decoded_digest.update(piece)
                if decoder is not None:
                    decoder.finish()
        except BaseException:
            raw_path.unlink(missing_ok=True)
            decoded_path.unlink(missing_ok=True)
            raise
        exchange.raw_path, exchange.raw_sha256, exchange.raw_size = (
            raw_path,
            raw_digest.hexdigest(),
            raw_size,
        )
        if decoder is None:
            return raw_path, raw_size, raw_digest.hexdigest()
        return decoded_path, decoded_size, decoded_digest.hexdigest()


class _Inflater:
    """Bounded-output gzip/deflate decoding: every piece it yields is at most one chunk,
    so memory stays flat whatever the compression ratio."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._members = 0
        self._obj = self._new()
        self._raw_deflate_checked = encoding != "deflate"

    def _new(self) -> zlib._Decompress:
        self._members += 1
        if self._members > MAX_GZIP_MEMBERS:
            raise FetchFailure(BAD_ENCODING, "too many gzip members", retry=False)
        return zlib.decompressobj(
            zlib.MAX_WBITS | 16 if self.encoding == "gzip" else zlib.MAX_WBITS
        )

    def feed(self, data: bytes):  # type: ignore[no-untyped-def]
        if not self._raw_deflate_checked and data:
            # "deflate" is zlib-wrapped by the standard, raw deflate by many servers.
            self._raw_deflate_checked = True
            if data[0] & 0x0F != 8:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            while data:
                yield self._obj.decompress(data, CHUNK_BYTES)
                data = self._obj.unconsumed_tail
                if self._obj.eof:
                    data = self._obj.unused_data + data
                    if not data.strip(b"\x00"):
                        return
                    self._obj = self._new()
        except zlib.error as exc:
            raise FetchFailure(BAD_ENCODING, f"corrupt {self.encoding} body: {exc}", False) from exc

    def finish(self) -> None:
        if not self._obj.eof and self._members == 1 and not self._obj.unconsumed_tail:
            # A truncated stream: keep what decoded, as browsers do, but say so.
            log.debug("%s body ended before its end-of-stream marker", self.encoding)


def _decoder_for(encoding: str) -> _Inflater | None:
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip"):
        return _Inflater("gzip")
    if encoding == "deflate":
        return _Inflater("deflate")
    raise FetchFailure(BAD_ENCODING, f"unsupported Content-Encoding {encoding!r}", retry=False)


def _exchange_from(response: aiohttp.ClientResponse, url: str, policy: AddressPolicy) -> Exchange:
    peer_ip = _peer_ip(response)
    if peer_ip is not None:
        # Belt and braces: the resolver already refused these; never read from one.
        policy.check_ip(peer_ip)
    version = response.version
    return Exchange(
        method="GET",
        url=url,
        request_headers=[(k, v) for k, v in response.request_info.headers.items()],
        status=response.status,
        reason=response.reason or "",
        http_version=f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1",
        response_headers=[
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
        ],
        fetched_at=datetime.now(UTC),
        resolved_ip=peer_ip,
    )


def _peer_ip(response: aiohttp.ClientResponse) -> str | None:
    """The IP address the response came from (for the WARC and the manifest).

    aiohttp hands a connection back to its pool as soon as a small body is complete,
    so the protocol that carried the response is asked when the connection is gone.
    """
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is None:
        protocol = getattr(response, "_protocol", None)
        transport = getattr(protocol, "transport", None)
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _new_temp(directory: Path, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(dir=directory, suffix=suffix)
    os.close(handle)
    return Path(name)
