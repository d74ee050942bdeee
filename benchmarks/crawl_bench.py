"""`ansim bench crawl`: a generated local site of 1,000 pages and 5,000 media items built
from ../shared/data, with transformed copies of references planted at known URLs.

References: the 24 Kodak images and the first cq100 image (their originals go through
`ref add`). Planted: two transformed copies of each (resized+JPEG, mirrored, cropped,
rotated, brightened, re-encoded at low quality), on random pages. Everything else is
distractor images from bsds500, urban100 and the rest of cq100 except its three copies of
Kodak images (small crops and re-encodes, so every URL holds distinct bytes), plus the
shared audio and sample videos (fetched, sniffed and sent to the detector like any
media), and page text taken from the shared SMS corpus. No threshold is tuned on this data.

Measured: pages/s, media/s, peak memory (crawler process and its hashing workers), seconds
from start to the last queued match, planted copies found vs missed, and unexpected
matches (a queued distractor would be a false positive). CPU seconds of the crawler, its
hashing workers and the site server (which shares these cores here), and the wall-time
floor they set: their sum over the core count.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from ansim.benchmarks.processes import PeakMemory, cpu_seconds
from PIL import Image, ImageEnhance, ImageOps

SITE_VERSION = 2  # 2: cq100's copies of Kodak images left out of the distractors
PAGES = 1000
MEDIA_PER_PAGE = 5
SOURCE_SIDE = 480  # sources are shrunk once; variants are crops and re-encodes of those

TRANSFORMS = {
    "resize-jpeg": lambda im: im.resize((im.width * 2 // 3, im.height * 2 // 3)),
    "mirror": ImageOps.mirror,
    "crop-5pct": lambda im: im.crop(
        (im.width // 20, im.height // 20, im.width * 19 // 20, im.height * 19 // 20)
    ),
    "rotate-90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "jpeg-q40": lambda im: im,
}


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _load_small(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((SOURCE_SIDE, SOURCE_SIDE))
        return image


def build_site(shared: Path, site: Path, seed: int = 2026, pages: int = PAGES) -> dict[str, Any]:
    """Write the static site under `site` (reused when already built); returns its manifest.
    `pages` below the default makes a smaller site of the same make (profiling runs)."""
    manifest_path = site / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") == SITE_VERSION and manifest.get("pages") == pages:
            return manifest
    shutil.rmtree(site, ignore_errors=True)
    (site / "m").mkdir(parents=True)
    (site / "p").mkdir(parents=True)
    rng = random.Random(seed)
    images = shared / "images"
    references = (
        sorted((images / "kodak24").glob("*.png")) + sorted((images / "cq100").glob("*.png"))[:1]
    )
    kodak_copies = _cq100_kodak_copies(images / "cq100")
    distractors = (
        sorted((images / "bsds500").rglob("*.jpg"))
        + sorted((images / "urban100").glob("*.png"))
        + [p for p in sorted((images / "cq100").glob("*.png"))[1:] if p.stem not in kodak_copies]
    )
    other_media = sorted((shared / "audio").glob("*.ogg")) + sorted(
        (shared / "threatexchange" / "tmk" / "sample-videos").glob("*.mp4")
    )
    texts = _texts(shared)

    media: list[tuple[str, bytes]] = []  # (file name, bytes)
    planted: dict[str, dict[str, str]] = {}
    for ref in references:
        small = _load_small(ref)
        for name in rng.sample(sorted(TRANSFORMS), 2):
            copy = TRANSFORMS[name](small)
            quality = 40 if name == "jpeg-q40" else 80
            file_name = f"{len(media):05d}.jpg"
            media.append((file_name, _jpeg(copy, quality)))
            planted[file_name] = {"reference": ref.name, "transform": name}
    for path in other_media:
        media.append((f"{len(media):05d}{path.suffix}", path.read_bytes()))
    small_distractors = [_load_small(p) for p in distractors]
    while len(media) < pages * MEDIA_PER_PAGE:
        base = rng.choice(small_distractors)
        left, top = rng.randint(0, 40), rng.randint(0, 40)
        variant = base.crop((left, top, base.width - rng.randint(0, 40), base.height - top))
        media.append((f"{len(media):05d}.jpg", _jpeg(variant, rng.randint(70, 92))))
    rng.shuffle(media)
    for file_name, data in media:
        (site / "m" / file_name).write_bytes(data)

    names = [name for name, _ in media]
    for page in range(pages):
        own = names[page * MEDIA_PER_PAGE : (page + 1) * MEDIA_PER_PAGE]
        links = [rng.randrange(pages) for _ in range(3)]
        body = "".join(_media_tag(name) for name in own)
        body += "".join(f'<a href="/p/{n}.html">related {n}</a> ' for n in links)
        body += f"<p>{html.escape(rng.choice(texts))}</p>"
        head = f"<!doctype html><html><head><title>page {page}</title></head>"
        (site / "p" / f"{page}.html").write_text(f"{head}<body>{body}</body></html>")
    index = "".join(f'<a href="/p/{n}.html">{n}</a> ' for n in range(pages))
    (site / "index.html").write_text(f"<!doctype html><html><body>{index}</body></html>")
    (site / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    manifest = {
        "version": SITE_VERSION,
        "pages": pages,
        "media": len(media),
        "references": [str(p) for p in references],
        "planted": planted,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def _cq100_kodak_copies(cq100: Path) -> set[str]:
    """cq100 images that are Kodak images (kodim03, 05, 23 under other names, per its
    metadata.csv): crops of them are copies of a reference, not distractors."""
    try:
        with open(cq100 / "metadata.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return set()
    return {
        row["Modified Filename"]
        for row in rows
        if row.get("Original Filename", "").lower().startswith("kodim")
    }


def _media_tag(name: str) -> str:
    if name.endswith(".ogg"):
        return f'<audio controls src="/m/{name}"></audio>'
    if name.endswith(".mp4"):
        return f'<video><source src="/m/{name}"></video>'
    return f'<img src="/m/{name}" alt="">'


def _texts(shared: Path) -> list[str]:
    corpus = shared / "text" / "sms_spam_collection" / "SMSSpamCollection"
    try:
        lines = corpus.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ["no text corpus available"]
    return [line.split("\t", 1)[-1] for line in lines[:2000] if line.strip()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(site: Path, port: int) -> None:
    """Serve the static site (run in its own process, so it does not share our GIL)."""
    from aiohttp import web

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(site / "index.html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/robots.txt", lambda _r: web.FileResponse(site / "robots.txt"))
    app.router.add_static("/p", site / "p")
    app.router.add_static("/m", site / "m")
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def run_crawl_bench(
    shared: Path,
    out: Path,
    workers: int = 32,
    pages: int = PAGES,
    image_verification: str = "all",
    engine: str = "local",
    ray_address: str | None = None,
    ray_nodes: int = 2,
) -> dict[str, Any]:
    """`engine` "ray" without `ray_address` starts a local cluster of `ray_nodes` nodes of
    one CPU each for the crawl (and stops it after)."""
    if engine == "ray" and ray_address is None:
        from ansim.benchmarks.ray_cluster import in_child_on_local_cluster

        result, cluster_usage = in_child_on_local_cluster(
            ray_nodes, run_crawl_bench, shared, out, workers, pages, image_verification, "ray"
        )
        result["ray_cluster_cpu_s"] = round(cluster_usage.children_cpu_s, 1)
        result["peak_rss_mb"]["ray_cluster"] = round(cluster_usage.peak_children / 2**20)
        # The actors hash on the cluster's nodes, which share this machine's cores.
        result["ray_local_nodes"] = ray_nodes
        result["cpu_bound_floor_s"] = round(
            sum(result[k] for k in ("crawler_cpu_s", "ray_cluster_cpu_s", "site_server_cpu_s"))
            / (os.cpu_count() or 1),
            1,
        )
        (out / "crawl-bench.json").write_text(json.dumps(result, indent=2))
        return result
    from ansim.casework.cases import open_case
    from ansim.pipeline import crawl, intake
    from ansim.pipeline.workspaces import init_workspace
    from ansim.store.home import Home

    out.mkdir(parents=True, exist_ok=True)
    built = time.monotonic()
    manifest = build_site(shared, out / "site", pages=pages)
    build_s = time.monotonic() - built
    home_root = out / "home"
    shutil.rmtree(home_root, ignore_errors=True)
    home = Home(root=home_root, db_url=f"sqlite:///{home_root / 'ansim.db'}")
    workspace, _ = init_workspace(home)
    case_id = open_case(workspace, "other")
    refs = intake.add_reference_files(workspace, case_id, [Path(p) for p in manifest["references"]])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from ansim.benchmarks.crawl_bench import serve; from pathlib "
         f"import Path; serve(Path({str(out / 'site')!r}), {port})"],
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        _wait_for_port(port)
        options = crawl.CrawlOptions(
            seeds=[f"http://127.0.0.1:{port}/"],
            max_pages=pages + 1,
            max_depth=3,
            allow_loopback=True,
            min_delay_s=0.0,
            workers=workers,
            host_concurrency=workers,
            image_verification=image_verification,
            engine=engine,
            ray_address=ray_address,
        )
        cpu_before = time.process_time()
        with PeakMemory(exclude={server.pid}) as memory:
            summary = crawl.run_crawl(workspace, options)
        # The crawler's own process (all its threads); hashing workers are not in it.
        crawler_cpu_s = time.process_time() - cpu_before
        server_cpu_s = cpu_seconds(psutil.Process(server.pid))
    finally:
        server.terminate()
        server.wait(10)
    found = {m["url"].rsplit("/", 1)[-1] for m in summary.match_list}
    planted = set(manifest["planted"])
    missed = sorted(planted - found)
    result = {
        "site": {
            "pages": manifest["pages"],
            "media": manifest["media"],
            "build_s": round(build_s, 1),
        },
        "references": sum(1 for r in refs if r.reference_id),
        "elapsed_s": round(summary.elapsed_s, 2),
        "pages_crawled": summary.pages,
        "media_fetched": summary.media,
        "media_hashed": summary.media_hashed,
        "pages_per_s": round(summary.pages / summary.elapsed_s, 1),
        "media_per_s": round(summary.media / summary.elapsed_s, 1),
        "crawler_cpu_s": round(crawler_cpu_s, 1),
        "crawler_cpu_ms_per_url": round(
            1000 * crawler_cpu_s / max(1, summary.pages + summary.media), 1
        ),
        # The hashing processes (sampled every 0.2 s, so a little low).
        "hash_workers_cpu_s": round(memory.children_cpu_s, 1),
        # The site's server shares this machine's cores; a real site is served elsewhere.
        "site_server_cpu_s": round(server_cpu_s, 1),
        # All three on this machine's cores: no schedule could finish in less wall time.
        "cpu_bound_floor_s": round(
            (crawler_cpu_s + memory.children_cpu_s + server_cpu_s) / (os.cpu_count() or 1), 1
        ),
        "image_verification": image_verification,
        "engine": engine,
        "images_local_features": summary.images_local_features,
        "seconds_to_last_queued_match": round(summary.seconds_to_last_match or 0, 2),
        "planted": len(planted),
        "planted_found": len(planted & found),
        "planted_missed": [{"file": f, **manifest["planted"][f]} for f in missed],
        "unexpected_matches": sorted(found - planted),
        "peak_rss_mb": {
            "crawler": round(memory.peak_main / 2**20),
            "with_hash_workers": round(memory.peak_total / 2**20),
        },
        "outcomes": dict(summary.outcomes),
        "history_bytes_per_image": _history_bytes_per_image(workspace),
        "cpu_count": os.cpu_count(),
        "target": "whole site queued in < 120 s",
    }
    (out / "crawl-bench.json").write_text(json.dumps(result, indent=2))
    workspace.close()
    return result


def _history_bytes_per_image(workspace: Any) -> dict[str, float]:
    """What the crawl history keeps per crawled image (target <= 1 KB): the stored signal
    values and blobs, and the image banks' index files."""
    from ansim.store.tables import ScannedItem, Signal
    from sqlalchemy import func, select

    with workspace.session() as session:
        images, stored = session.execute(
            select(
                func.count(func.distinct(Signal.item_id)),
                func.sum(
                    func.length(func.coalesce(Signal.value, ""))
                    + func.length(func.coalesce(Signal.blob, b""))
                ),
            )
            .join(ScannedItem, Signal.item_id == ScannedItem.id)
            .where(ScannedItem.modality == "image")
        ).one()
    # The image banks' files (text and audio banks are other modalities' items): each
    # bank's manifest and the base and delta segments it names.
    index_bytes = sum(
        path.stat().st_size
        for name in ("pdq", "descriptor", "orb")
        for path in workspace.home.index_dir.glob(f"history-{name}.index*")
        if path.is_file()
    )
    return {
        "store_signals": round((stored or 0) / max(1, images), 1),
        "image_index_files": round(index_bytes / max(1, images), 1),
    }


def _wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"bench site did not start on port {port}")
