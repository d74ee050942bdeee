"""A deliberately hostile web site on 127.0.0.1 for the crawler tests.

Every route is one way a real site can hurt a crawler: loops, traps, huge or endless
bodies, bombs, lies about content types, links into private networks, robots rules,
error storms and dropped connections. `hits` counts requests per path so tests can
assert what the crawler did (and did not) fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import socket
import struct
import time
import zlib
from collections import Counter
from functools import cache

import numpy as np
from aiohttp import web
from PIL import Image

from tests.localserve import LocalServer

HUGE_BYTES = 2 << 30  # 2 GiB, streamed from one reusable block, never materialized
BOMB_INFLATED_BYTES = 64 << 20
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nCrawl-delay: 0\n"


def make_png(seed: int, size: int = 96) -> bytes:
    """A textured image with a high PDQ quality (smooth noise), distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels (an image decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 16, 9)  # only the first rows: enough to open
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@cache
def gzip_bomb() -> bytes:
    """~64 KB of gzip that inflates to 64 MiB of zeros (1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\x00" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(BOMB_INFLATED_BYTES >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


def page(body: str, title: str = "page", head: str = "") -> web.Response:
    html = (
        f"<!doctype html><html><head><title>{title}</title>{head}</head><body>{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html")


class HostileSite:
    def __init__(self) -> None:
        self.server: LocalServer | None = None  # set by whoever serves it
        self.hits: Counter[str] = Counter()
        self.flaky_left: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals: list[float] = []
        self.app = web.Application(middlewares=[self._count])
        self.images = {i: make_png(i) for i in range(4)}
        self.gzip_bomb = gzip_bomb()
        routes = [
            ("/", self.index),
            ("/robots.txt", self.robots),
            ("/img/{n}.png", self.image),
            ("/private/{name}", self.private),
            ("/loop/a", self.redirect_to("/loop/b")),
            ("/loop/b", self.redirect_to("/loop/a")),
            ("/chain/{n}", self.chain),
            ("/trap/{n}", self.trap),
            ("/huge", self.huge),
            ("/huge-chunked", self.huge_chunked),
            ("/drip", self.drip),
            ("/stall", self.stall),
            ("/gzip-bomb", self.serve_gzip_bomb),
            ("/bad-gzip", self.bad_gzip),
            ("/image-bomb.png", self.image_bomb),
            ("/malformed", self.malformed),
            ("/wrong-type/page.jpg", self.html_as_jpeg),
            ("/wrong-type/image.html", self.image_as_html),
            ("/disguised.txt", self.disguised),
            ("/ssrf", self.ssrf_links),
            ("/redirect-private", self.redirect_to("http://10.1.2.3/admin")),
            ("/redirect-metadata", self.redirect_to("http://169.254.169.254/latest/meta-data/")),
            ("/redirect-mapped", self.redirect_to("http://[::ffff:10.0.0.1]/")),
            ("/redirect-decimal", self.redirect_to("http://167772161/")),  # 10.0.0.1
            ("/redirect-javascript", self.redirect_to("javascript:alert(1)")),
            ("/storm/{n}", self.storm),
            ("/flaky/{name}", self.flaky),
            ("/ratelimited/{name}", self.ratelimited),
            ("/reset", self.reset),
            ("/reset-midbody", self.reset_midbody),
            ("/slow/{n}", self.slow),
            ("/gzipped", self.gzipped),
        ]
        for path, handler in routes:
            self.app.router.add_get(path, handler)

    def url(self, path: str) -> str:
        assert self.server is not None, "serve the site first"
        return self.server.url(path)

    @web.middleware
    async def _count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits[request.path] += 1
        return await handler(request)

    @staticmethod
    def redirect_to(location: str):  # type: ignore[no-untyped-def]
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(status=302, headers={"Location": location})

        return handler

    async def index(self, _request: web.Request) -> web.Response:
        links = [
            "/loop/a", "/chain/0", "/trap/0", "/huge", "/huge-chunked", "/drip", "/stall",
            "/gzip-bomb", "/bad-gzip", "/malformed", "/wrong-type/page.jpg", "/ssrf",
            "/redirect-private", "/redirect-metadata", "/storm/0", "/reset", "/reset-midbody",
            "/private/page",
        ]  # fmt: skip
        body = "".join(f'<a href="{href}">{href}</a> ' for href in links)
        body += '<img src="/img/0.png"><img src="/image-bomb.png"><img src="/disguised.txt">'
        body += '<img src="/wrong-type/image.html"><img src="/private/secret.png">'
        return page(body, "hostile index")

    async def robots(self, _request: web.Request) -> web.Response:
        return web.Response(text=ROBOTS_TXT, content_type="text/plain")

    async def image(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"]) % len(self.images)
        return web.Response(body=self.images[n], content_type="image/png")

    async def private(self, request: web.Request) -> web.Response:
        if request.match_info["name"].endswith(".png"):
            return web.Response(body=self.images[3], content_type="image/png")
        return page("robots.txt forbids this page", "private")

    async def chain(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        return web.Response(status=301, headers={"Location": f"/chain/{n + 1}"})

    async def trap(self, request: web.Request) -> web.Response:
        """Endless pagination: every page links to the next, and to a fresh query variant."""
        n = int(request.match_info["n"])
        return page(
            f'<a href="/trap/{n + 1}">next</a> <a href="/trap/{n}?sort={n}&session={n * 7}">x</a>',
            f"trap {n}",
            head=f'<link rel="next" href="/trap/{n + 1}">',
        )

    async def huge(self, request: web.Request) -> web.StreamResponse:
        return await self._stream_zeros(request, HUGE_BYTES, declare_length=True)

    async def huge_chunked(self, request: web.Request) -> web.StreamResponse:
        return await self._stream_zeros(request, HUGE_BYTES, declare_length=False)

    @staticmethod
    async def _stream_zeros(
        request: web.Request, total: int, declare_length: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        if declare_length:
            response.content_length = total
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"\xff" * (256 << 10)
        sent = 0
        try:
            while sent < total:
                await response.write(block)
                sent += len(block)
        except (ConnectionError, asyncio.CancelledError, RuntimeError):
            pass  # the crawler hung up, as it should
        return response

    async def drip(self, request: web.Request) -> web.StreamResponse:
        """One byte every 0.2 s forever: never silent long enough for a read timeout."""
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while True:
                await response.write(b" ")
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.CancelledError, RuntimeError):
            pass
        return response

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.content_length = 1000
        await response.prepare(request)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return response

    async def serve_gzip_bomb(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self.gzip_bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}
        )

    async def bad_gzip(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=b"\x1f\x8b\x08\x00garbage-not-deflate" * 10,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/html"},
        )

    async def image_bomb(self, _request: web.Request) -> web.Response:
        return web.Response(body=make_png_bomb(), content_type="image/png")

    async def malformed(self, _request: web.Request) -> web.Response:
        soup = (
            "<html><head><title>broken</title><body><div><p>unclosed <b>bold <i>italic"
            '<img src="/img/1.png" <a href="/img/2.png>half</a>'
            "<table><tr><td>cell<td>cell2</table></div></span></span>"
            '<img src="/img/2.png"><a href="/trap/0">trap</a>'
            "<script>document.write('<img src=\"/never.png\">')</script><!-- unterminated comment"
        )
        return web.Response(body=soup.encode() + b"\xff\xfe\x00bad-utf8", content_type="text/html")

    async def html_as_jpeg(self, _request: web.Request) -> web.Response:
        return page('<img src="/img/1.png"> this page says it is a JPEG')

    async def image_as_html(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.images[2], content_type="text/html")

    async def disguised(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.images[1], content_type="text/plain")

    async def ssrf_links(self, request: web.Request) -> web.Response:
        port = request.url.port
        hrefs = [
            "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
            f"http://localhost:{port}/img/0.png", "http://192.168.1.1/router.png",
            "http://[::ffff:10.0.0.1]/", "http://0x7f000001/", "http://[fe80::1]/",
            "/redirect-private", "/redirect-metadata", "/redirect-mapped", "/redirect-decimal",
        ]  # fmt: skip
        body = "".join(f'<a href="{h}">x</a><img src="{h}x.png">' for h in hrefs)
        return page(body, "ssrf")

    async def storm(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        body = f'<a href="/storm/{n + 1}">next</a>' if n < 50 else ""
        return web.Response(status=500 + n % 4, text=body, content_type="text/html")

    async def flaky(self, request: web.Request) -> web.Response:
        """Fails twice with 503, then serves: retries must get through."""
        name = request.match_info["name"]
        if self.flaky_left[name] < 2:
            self.flaky_left[name] += 1
            return web.Response(status=503, text="busy")
        return page("finally", "flaky")

    async def ratelimited(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.flaky_left[name] < 1:
            self.flaky_left[name] += 1
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        return page("thanks for waiting", "ratelimited")

    async def reset(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends a TCP RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        raise asyncio.CancelledError  # nothing more to send on a dead connection

    async def reset_midbody(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000)
        if request.transport is not None:
            request.transport.abort()
        return response

    async def slow(self, request: web.Request) -> web.Response:
        """Answers in 0.3 s, recording arrivals and concurrency for the politeness tests."""
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.3)
        finally:
            self.in_flight -= 1
        return page(f"slow {request.match_info['n']}")

    async def gzipped(self, _request: web.Request) -> web.Response:
        html = b"<html><body><p>compressed page</p><img src='/img/0.png'></body></html>"
        return web.Response(
            body=gzip.compress(html),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/html"},
        )
