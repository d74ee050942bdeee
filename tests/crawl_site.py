"""A small generated site for crawl tests: pages in a tree, each with a few images, some
of them transformed copies of references. Served from memory by aiohttp on 127.0.0.1."""

from __future__ import annotations

import io
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

from aiohttp import web
from PIL import Image

from tests.helpers import photo_like

SITE_IMAGE_SIZE = (160, 120)


class CrawlSite:
    """`pages` pages; page i links to pages 2i+1 and 2i+2 and shows images i*k .. i*k+k-1.

    Image 0 is shared by every page (a logo: one fetch, content de-dup). Images listed in
    `planted` are served as a JPEG, resized copy of reference image `planted[n]`.
    """

    def __init__(self, tmp: Path, pages: int = 20, per_page: int = 2, planted: int = 2) -> None:
        self.pages = pages
        self.per_page = per_page
        self.hits: Counter[str] = Counter()
        tmp.mkdir(parents=True, exist_ok=True)
        self.reference_files = []
        for i in range(planted):
            self.reference_files.append(tmp / f"ref{i}.png")
            self.reference_files[-1].write_bytes(_image(1000 + i, (320, 240)))
        self.images: dict[int, bytes] = {0: _image(7, SITE_IMAGE_SIZE)}
        self.planted_paths: list[str] = []
        for page in range(pages):
            for k in range(per_page):
                n = 1 + page * per_page + k
                self.images[n] = _image(50_000 + n, SITE_IMAGE_SIZE)
        for i, ref in enumerate(self.reference_files):
            n = 1 + (pages - 1 - i * 3) * per_page  # deep pages, first image
            copy = Image.open(ref).convert("RGB").resize((256, 192))
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=80)
            self.images[n] = buffer.getvalue()
            self.planted_paths.append(f"/m/{n}.img")
        self.app = web.Application(middlewares=[self._count])
        self.app.router.add_get("/robots.txt", self.robots)
        self.app.router.add_get("/p/{i}.html", self.page)
        self.app.router.add_get("/m/{n}.img", self.media)

    @web.middleware
    async def _count(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits[request.path] += 1
        return await handler(request)

    async def robots(self, _request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private/\n")

    async def page(self, request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        if i >= self.pages:
            raise web.HTTPNotFound()
        links = "".join(
            f'<a href="/p/{j}.html">page {j}</a> ' for j in (2 * i + 1, 2 * i + 2) if j < self.pages
        )
        images = '<img src="/m/0.img">' + "".join(
            f'<img src="/m/{1 + i * self.per_page + k}.img">' for k in range(self.per_page)
        )
        html = f"<html><body><h1>page {i}</h1>{links}{images}<p>text of page {i}</p></body></html>"
        return web.Response(text=html, content_type="text/html")

    async def media(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n not in self.images:
            raise web.HTTPNotFound()
        return web.Response(body=self.images[n], content_type="application/octet-stream")

    @property
    def page_paths(self) -> list[str]:
        return [f"/p/{i}.html" for i in range(self.pages)]

    @property
    def media_paths(self) -> list[str]:
        return [f"/m/{n}.img" for n in self.images]


@cache
def _image(seed: int, size: tuple[int, int]) -> bytes:
    """Generated once per test session: building photo-like images is the slow part."""
    with tempfile.TemporaryDirectory() as scratch:
        return photo_like(Path(scratch) / "image.png", seed, size).read_bytes()
