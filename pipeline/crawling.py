"""Crawls: seeds -> frontier (in the store) -> fetch -> extract -> fingerprint -> match ->
takedown queue with sealed WARC evidence, and every crawled item into the crawl history.

Durability: the frontier and the visited set are the `crawl_url` table. A URL is finished
in the same transaction as everything its fetch produced, so after `kill -9` at any
moment `--resume` refetches only what was in flight (its results were never recorded)
and records everything exactly once. A page is finished only after all its media, so a
page in flight at the crash is fetched again and its finished media are skipped.

Batched commits: the crawl's store work runs in one open transaction that commits every
`COMMIT_EVERY_URLS` finished URLs or `COMMIT_INTERVAL_S` seconds, whichever comes first.
Each URL's writes sit in their own SAVEPOINT, so a URL that fails rolls back alone. A URL
counts as in flight until its batch commits: a kill loses the whole open batch, which
`--resume` fetches again, and nothing of it was recorded.

One crawl per home at a time: an exclusive flock on `$ANSIM_HOME/crawl.lock`, which the
kernel releases when the process dies however it dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import EvidenceError, EvidenceStore
from ansim.crawler.extract import extract_page
from ansim.crawler.fetch import Fetcher, FetchLimits, FetchResult
from ansim.crawler.guard import AddressPolicy
from ansim.crawler.politeness import Politeness, PolitenessConfig
from ansim.crawler.robots import RobotsCache
from ansim.crawler.urls import Scope, normalize_url
from ansim.detector.decision import MatchRules
from ansim.detector.errors import MediaError, UnsupportedMedia
from ansim.detector.faiss_threads import one_faiss_thread
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import (
    LOCAL_FEATURES_OPTION,
    descriptor_available,
    local_features_file,
)
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import opencv_available
from ansim.detector.signals import MediaSignals
from ansim.detector.sniff import sniff_bytes
from ansim.pipeline.banks import Banks
from ansim.pipeline.matching import Finding, find_matches, needs_local_features
from ansim.pipeline.scanning import RecordedItem, ScanMatch, record_item
from ansim.signal_types.hashing import hash_file
from ansim.store.db import Store
from ansim.store.home import Home
from ansim.store.tables import (
    CrawlRun,
    CrawlUrl,
    Evidence,
    Match,
    Reference,
    ScannedItem,
    utcnow,
)
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

log = logging.getLogger("ansim.crawl")

HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<a ", b"<img", b"<div", b"<p>")
HISTORY_FLUSH_ROWS = 2000
MEDIA_PER_PAGE_CONCURRENCY = 8
MAX_LISTED_MATCHES = 1000
CLAIM_BATCH = 200
# One transaction per this many finished URLs or this many seconds, whichever comes first:
# a commit per URL cost more CPU than the URL's own work, and the interval bounds how long
# the crawl holds SQLite's write lock and how much a kill makes `--resume` fetch again.
COMMIT_EVERY_URLS = 64
COMMIT_INTERVAL_S = 0.25
IMAGE_VERIFICATION = ("triage", "all", "off")
FINISH_COLUMNS = (
    "state", "fetched_at", "outcome", "error", "http_status", "final_url",
    "content_type", "size", "sha256", "resolved_ip", "item_id",
)  # fmt: skip
# Every finish sets every column (None where it has nothing): one executemany per batch.
FINISH_ROW = (
    update(CrawlUrl.__table__)
    .where(CrawlUrl.__table__.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in FINISH_COLUMNS})
)


@dataclass
class CrawlOptions:
    seeds: list[str] = field(default_factory=list)
    max_pages: int = 1000
    max_depth: int = 3
    scope: str = "same-site"
    allow_hosts: list[str] = field(default_factory=list)
    allow_loopback: bool = False
    ignore_robots_hosts: list[str] = field(default_factory=list)
    max_response_bytes: int = 64 << 20
    max_crawl_bytes: int = 20 << 30
    workers: int = 16
    host_concurrency: int = 4
    min_delay_s: float = 0.25
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    retries: int = 2
    # Processes fingerprinting media: 0 one per CPU; 1 a thread (no start-up cost, for
    # small scans and tests).
    hash_processes: int = 0
    # Local-feature verification of crawled images (ORB, the dearest image signal):
    # "all" every image, features stored (as `ansim scan`; a later retro-hunt can verify
    # crops against them), "triage" only images with a candidate that PDQ or the
    # descriptor leave open now, "off" none (PDQ and descriptor decide alone). Triage and
    # off store ORB features for few or no crawled images, so a later retro-hunt finds
    # their crops by PDQ and descriptor only.
    image_verification: str = "all"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CrawlOptions:
        return cls(**json.loads(text))


@dataclass
class UnwrittenContent:
    """Fingerprinted bytes whose item waits in the open batch; filled in when written."""

    signals: MediaSignals
    findings: list[Finding]
    item_id: int | None = None
    matched: bool = False


@dataclass
class CrawlSummary:
    run_id: int
    pages: int = 0
    media: int = 0
    media_hashed: int = 0
    media_duplicate_content: int = 0
    # Images whose ORB features were computed for verification (a candidate was open).
    images_local_features: int = 0
    texts_hashed: int = 0
    matches: int = 0
    match_list: list[dict[str, Any]] = field(default_factory=list)
    takedowns: list[int] = field(default_factory=list)
    evidence: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    seconds_to_last_match: float | None = None
    elapsed_s: float = 0.0
    log_path: str | None = None
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started")
        out["outcomes"] = dict(sorted(self.outcomes.items()))
        out["takedowns"] = sorted(set(self.takedowns))
        out["pages_per_s"] = round(self.pages / self.elapsed_s, 2) if self.elapsed_s else None
        out["media_per_s"] = round(self.media / self.elapsed_s, 2) if self.elapsed_s else None
        return out


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


@contextmanager
def crawl_lock(workspace: Workspace) -> Iterator[None]:
    """Only one crawl per home; a second one is refused at once, not queued."""
    path = workspace.home.root / "crawl.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CaseworkError(f"another crawl is running on this home ({holder})") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_run(workspace: Workspace, options: CrawlOptions) -> int:
    if options.image_verification not in IMAGE_VERIFICATION:
        raise CaseworkError(
            f"image verification must be one of {', '.join(IMAGE_VERIFICATION)}, "
            f"not {options.image_verification!r}"
        )
    seeds = [s for s in (normalize_url(seed) for seed in options.seeds) if s]
    if not seeds:
        raise CaseworkError("no crawlable seed URL (http or https) given")
    with workspace.session() as session:
        run = CrawlRun(options=options.to_json())
        session.add(run)
        session.flush()
        for seed in dict.fromkeys(seeds):
            session.add(
                CrawlUrl(run_id=run.id, url=seed, url_hash=url_hash(seed), kind="page", depth=0)
            )
        return run.id


def latest_unfinished_run(workspace: Workspace) -> int:
    with workspace.session() as session:
        run_id = session.execute(
            select(CrawlRun.id).where(CrawlRun.status == "running").order_by(CrawlRun.id.desc())
        ).scalar()
    if run_id is None:
        raise CaseworkError("no unfinished crawl to resume")
    return run_id


def run_crawl(
    workspace: Workspace,
    options: CrawlOptions | None = None,
    resume: bool = False,
    on_progress: Callable[[CrawlSummary], None] | None = None,
) -> CrawlSummary:
    """Start a crawl with `options`, or resume the latest unfinished one; returns its summary."""
    with crawl_lock(workspace):
        if resume:
            run_id = latest_unfinished_run(workspace)
            with workspace.session() as session:
                options = CrawlOptions.from_json(session.get(CrawlRun, run_id).options)
        else:
            assert options is not None
            run_id = start_run(workspace, options)
        crawl = Crawl(workspace, options, run_id, on_progress)
        crawl.summary.resumed = resume
        # The hashing workers keep every core busy: FAISS threads here (history index adds,
        # its one training) would only spin-wait against them.
        with crawl.logging_to_file(), one_faiss_thread():
            asyncio.run(crawl.run())
        return crawl.summary


class Crawl:
    def __init__(
        self,
        workspace: Workspace,
        options: CrawlOptions,
        run_id: int,
        on_progress: Callable[[CrawlSummary], None] | None = None,
    ) -> None:
        self.workspace = workspace
        self.options = options
        self.run_id = run_id
        self.on_progress = on_progress
        self.summary = CrawlSummary(run_id=run_id)
        self.scope = Scope(options.scope, set(options.allow_hosts))
        for seed in options.seeds:
            if normalized := normalize_url(seed):
                self.scope.add_seed(normalized)
        self.history = Banks(workspace.home.index_dir, owner="item")
        self.evidence = EvidenceStore(workspace.home.root / "evidence", workspace.cipher.fernet())
        # Triage, with a descriptor to find candidates: an image's ORB features (two thirds
        # of its hashing CPU) are computed only when a candidate is left to verify, and
        # only PDQ's and the descriptor's candidates with evidence are verified (see
        # signal_types.orb.needs_local_features for what that gives up). Without a
        # descriptor, triage is "all": local features are then the only robust evidence.
        mode = options.image_verification
        robust_here = descriptor_available() and opencv_available()
        self._lazy_local_features = mode == "triage" and robust_here
        features_up_front = mode == "all" or (mode == "triage" and not robust_here)
        self.hash_options = HashOptions(
            max_file_bytes=options.max_response_bytes,
            extra={} if features_up_front else {LOCAL_FEATURES_OPTION: False},
        )
        self.match_rules = MatchRules(image_triage=not features_up_front)
        self._claimed: set[int] = set()
        self._buffer: list[Row[Any]] = []
        # Finished URLs whose writes wait for the next batch (see _write_batch).
        self._batch: list[tuple[int, Callable[[Session], None]]] = []
        self._batch_opened = 0.0
        self._unwritten: set[int] = set()
        self._unwritten_content: dict[str, UnwrittenContent] = {}
        self._discard_later: list[FetchResult] = []
        self._written: list[tuple[RecordedItem, list[ScanMatch]]] = []
        self._finishes: list[dict[str, Any]] = []
        self._finished_pages = -1  # counted from the store on the first refill
        self._wake = asyncio.Event()
        self._media_in_flight: set[str] = set()
        self._active = 0
        self._pages_started = 0
        self._history_rows: list[Any] = []
        self._unmatched_sha: dict[str, int] = {}
        # Sorted first 8 bytes of the SHA-256 of earlier runs' items (_content_prefixes).
        self._earlier_content = np.zeros(0, np.uint64)
        self._hashing: dict[str, asyncio.Future[None]] = {}
        self._newest_reference_at: datetime | None = None
        self._stop_reason: str | None = None
        self._work_dir: Path | None = None

    @contextmanager
    def logging_to_file(self) -> Iterator[None]:
        log_dir = self.workspace.home.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"crawl-{self.run_id}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger("ansim")
        previous_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        self.summary.log_path = str(path)
        with self.workspace.session() as session:
            session.get(CrawlRun, self.run_id).log_path = str(path)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            handler.close()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        options = self.options
        limits = FetchLimits(
            connect_timeout_s=options.connect_timeout_s,
            read_timeout_s=options.read_timeout_s,
            total_timeout_s=options.total_timeout_s,
            max_bytes=options.max_response_bytes,
            retries=options.retries,
        )
        politeness = Politeness(
            PolitenessConfig(
                concurrency_per_host=options.host_concurrency, min_delay_s=options.min_delay_s
            )
        )
        with self.workspace.session() as session:
            self._newest_reference_at = session.execute(
                select(func.max(Reference.added_at))
            ).scalar()
            self.history.ensure_consistent(session)
        # Outside the write lock: it reads a row per earlier item (millions in a long-used store).
        with self.workspace.store.read_session() as session:
            self._earlier_content = _content_prefixes(session, self._newest_reference_at)
        processes = options.hash_processes or os.cpu_count() or 1
        pool: Executor
        if processes == 1:
            pool = ThreadPoolExecutor(1)
        else:
            # forkserver: never fork a process that holds sockets, threads and the store.
            pool = ProcessPoolExecutor(
                processes, mp_context=get_context("forkserver"), initializer=_init_hash_worker
            )
        log.info("crawl run %d starting: %s", self.run_id, options.to_json())
        with tempfile.TemporaryDirectory(prefix="ansim-crawl-") as work_dir, pool:
            self._work_dir = Path(work_dir)
            self._pool = pool
            async with Fetcher(
                work_dir=self._work_dir,
                limits=limits,
                policy=AddressPolicy(allow_loopback=options.allow_loopback),
                politeness=politeness,
                max_connections=max(options.workers * 2, 16),
            ) as fetcher:
                self.fetcher = fetcher
                self.robots = RobotsCache(fetcher, ignore_hosts=set(options.ignore_robots_hosts))
                writer = asyncio.create_task(self._write_on_interval())
                workers = [asyncio.create_task(self._worker()) for _ in range(options.workers)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    writer.cancel()
                    self._write_batch()  # before the fetched bodies' folder goes
        release_matching_banks(self.workspace.home)  # held here when hashing ran in-process
        self._flush_history(force=True)
        self.summary.elapsed_s = time.monotonic() - self.summary.started
        self.summary.outcomes.update(
            {f"robots_{k}": v for k, v in self.robots.counts.items() if k != "allowed"}
        )
        finished = self._stop_reason is None or self._stop_reason.startswith("max")
        with self.workspace.session() as session:
            run = session.get(CrawlRun, self.run_id)
            if finished:
                run.status, run.finished_at = "finished", utcnow()
            run.summary = json.dumps(self.summary.as_dict())
        log.info("crawl run %d done: %s", self.run_id, json.dumps(self.summary.as_dict()))

    async def _worker(self) -> None:
        while (row := await self._next_page()) is not None:
            self._active += 1
            try:
                await self._process_page(row)
            except Exception:  # one page must never end the crawl
                log.exception("page %s failed unexpectedly", row.url)
                self._finish(row.id, "failed", outcome="internal_error")
            finally:
                self._active -= 1
                self._claimed.discard(row.id)
                self._finished_pages += 1
                self._wake.set()
                if self.on_progress:
                    self.on_progress(self.summary)

    async def _next_page(self) -> Row[Any] | None:
        """The next pending page (shallowest first), or None when the crawl is over."""
        while True:
            if self._stop_reason is None and self.summary.bytes > self.options.max_crawl_bytes:
                self._stop_reason = "crawl byte cap reached"
                log.warning("stopping: %s", self._stop_reason)
            if self._stop_reason:
                return None
            if self._finished_pages + len(self._claimed) >= self.options.max_pages:
                if not self._claimed:
                    self._stop_reason = "max pages reached"
                    return None
            else:
                if not self._buffer:
                    self._refill()
                if self._buffer:
                    row = self._buffer.pop(0)
                    self._claimed.add(row.id)
                    return row
                if self._active == 0:
                    return None
            # Wait for a page to finish (and maybe add links) instead of polling the store.
            self._wake.clear()
            await self._wake.wait()

    def _refill(self) -> None:
        with self.workspace.store.session() as session:
            if self._finished_pages < 0:  # first call: pages finished by earlier sessions
                self._finished_pages = session.execute(
                    select(func.count(CrawlUrl.id)).where(
                        CrawlUrl.run_id == self.run_id,
                        CrawlUrl.kind == "page",
                        CrawlUrl.state != "pending",
                    )
                ).scalar_one()
            query = (
                select(CrawlUrl.id, CrawlUrl.url, CrawlUrl.depth)
                .where(
                    CrawlUrl.run_id == self.run_id,
                    CrawlUrl.kind == "page",
                    CrawlUrl.state == "pending",
                )
                .order_by(CrawlUrl.depth, CrawlUrl.id)
                .limit(len(self._claimed) + len(self._unwritten) + CLAIM_BATCH)
            )
            # Pages finished in memory but not yet written are still pending in the store.
            self._buffer = [
                r
                for r in session.execute(query)
                if r.id not in self._claimed and r.id not in self._unwritten
            ]

    # ------------------------------------------------------------------ pages

    async def _permit(self, url: str) -> str | None:
        """Every redirect hop of a page stays in scope and obeys robots.txt."""
        if not self.scope.allows(url):
            return "out of crawl scope"
        return await self.robots.refusal(url)

    async def _permit_media(self, url: str) -> str | None:
        # Media may sit on another host (a CDN); robots.txt still rules it.
        return await self.robots.refusal(url)

    async def _process_page(self, row: Row[Any]) -> None:
        refusal = await self.robots.refusal(row.url)
        if refusal:
            self._finish(row.id, "skipped", outcome="robots_disallowed", error=refusal)
            return
        result = await self.fetcher.fetch(row.url, permit=self._permit)
        self.summary.bytes += result.size
        if not result.ok:
            self._finish(row.id, "failed", result=result)
            return
        try:
            head = result.read_body(4096)
            sniffed = sniff_bytes(head)
            if sniffed.modality in ("image", "video", "audio"):
                # A seed or link that is itself media (e.g. `ansim scan URL-of-image`).
                await self._media_from_fetch(row.id, row.url, result, page=None)
                return
            if not _looks_like_html(head, result.content_type):
                self._finish(row.id, "done", result=result, outcome="not_html")
                return
            self.summary.pages += 1
            content = extract_page(result.read_body(), result.final_url or row.url)
            links = (
                [link.url for link in content.links] if row.depth < self.options.max_depth else []
            )
            media_rows = self._enqueue(row, links, [m.url for m in content.media])
            limiter = asyncio.Semaphore(MEDIA_PER_PAGE_CONCURRENCY)

            async def one(media_id: int, media_url: str) -> None:
                async with limiter:
                    await self._process_media(media_id, media_url, result)

            await asyncio.gather(*(one(media_id, url) for media_id, url in media_rows))
            if content.text:
                await self._process_text(row, result, content.text)
            self._finish(row.id, "done", result=result, outcome="ok")
        finally:
            self._discard_after_write(result)

    def _enqueue(self, page: Row[Any], links: list[str], media: list[str]) -> list[tuple[int, str]]:
        """A page's in-scope links and its media into the frontier, in one transaction.

        Returns the media not yet seen in this run (the visited set): (row id, url)."""
        pages_wanted = {}
        for url in links:
            if self.scope.allows(url):
                pages_wanted[url_hash(url)] = url
            else:
                self.summary.outcomes["out_of_scope"] += 1
        media_wanted = {url_hash(url): url for url in media if url not in self._media_in_flight}
        if not pages_wanted and not media_wanted:
            return []
        with self.workspace.store.session() as session:
            if pages_wanted:
                self._insert_new(session, page, pages_wanted, "page", page.depth + 1)
            if not media_wanted:
                rows = []
            else:
                self._insert_new(session, page, media_wanted, "media", page.depth)
                rows = session.execute(
                    select(CrawlUrl.id, CrawlUrl.url).where(
                        CrawlUrl.run_id == self.run_id,
                        CrawlUrl.url_hash.in_(list(media_wanted)),
                        CrawlUrl.state == "pending",
                    )
                ).all()
        if pages_wanted:
            self._buffer = []  # re-read in depth order next time
            self._wake.set()
        pending = [
            (row_id, url)
            for row_id, url in rows
            if url not in self._media_in_flight and row_id not in self._unwritten
        ]
        self._media_in_flight.update(url for _, url in pending)
        return pending

    def _insert_new(
        self, session: Session, parent: Row[Any], wanted: dict[str, str], kind: str, depth: int
    ) -> None:
        known = set(
            session.execute(
                select(CrawlUrl.url_hash).where(
                    CrawlUrl.run_id == self.run_id, CrawlUrl.url_hash.in_(list(wanted))
                )
            ).scalars()
        )
        new_rows = [
            {
                "run_id": self.run_id,
                "url": url,
                "url_hash": digest,
                "kind": kind,
                "depth": depth,
                "referrer_id": parent.id,
                "state": "pending",
            }
            for digest, url in wanted.items()
            if digest not in known
        ]
        if new_rows:  # one executemany, no ORM objects
            session.execute(insert(CrawlUrl), new_rows)

    # ------------------------------------------------------------------ media

    async def _process_media(self, row_id: int, url: str, page: FetchResult) -> None:
        try:
            refusal = await self._permit_media(url)
            if refusal:
                self._finish(row_id, "skipped", outcome="robots_disallowed", error=refusal)
                return
            result = await self.fetcher.fetch(url, permit=self._permit_media)
            self.summary.bytes += result.size
            if not result.ok:
                self._finish(row_id, "failed", result=result)
                return
            try:
                await self._media_from_fetch(row_id, url, result, page)
            finally:
                self._discard_after_write(result)
        except Exception:
            log.exception("media %s failed unexpectedly", url)
            self._finish(row_id, "failed", outcome="internal_error")
        finally:
            self._media_in_flight.discard(url)

    async def _media_from_fetch(
        self, row_id: int, url: str, result: FetchResult, page: FetchResult | None
    ) -> None:
        self.summary.media += 1
        location = result.final_url or url
        sha256 = result.sha256 or ""
        first = self._hashing.get(sha256)
        if first is not None:
            await asyncio.shield(first)  # the same bytes are being fingerprinted right now
        unwritten = self._unwritten_content.get(sha256) if result.sha256 else None
        if unwritten is not None:
            # The same bytes wait in the open batch; whether they matched is known only
            # when it is written: decided there, with their signals (no second hash).
            self._defer(
                row_id,
                lambda s: self._write_duplicate(s, row_id, location, unwritten, result, page),
            )
            return
        known_item = self._unmatched_duplicate(result.sha256)
        if known_item is not None:
            # Same bytes already fingerprinted and matched nothing since: hash once.
            self.summary.media_duplicate_content += 1
            self._finish(
                row_id, "done", result=result, outcome="duplicate_content", item=known_item
            )
            return
        assert result.body_path is not None
        done = self._hashing[sha256] = asyncio.get_running_loop().create_future()
        try:
            signals, findings = await self._fingerprint(result.body_path)
        except UnsupportedMedia as exc:
            # No hasher for this kind (yet): fetched, sniffed, counted, dropped.
            self._finish(row_id, "done", result=result, outcome="unsupported_media", error=str(exc))
            return
        except MediaError as exc:
            self._finish(row_id, "failed", result=result, outcome="media_error", error=str(exc))
            return
        finally:
            done.set_result(None)
            self._hashing.pop(sha256, None)
        self.summary.media_hashed += 1
        content = UnwrittenContent(signals, findings)
        if signals.sha256:
            self._unwritten_content.setdefault(signals.sha256, content)
        self._defer(row_id, lambda s: self._write_media(s, row_id, location, content, result, page))

    async def _fingerprint(self, path: Path) -> tuple[MediaSignals, list[Finding]]:
        """Signals of a fetched file and the references they match, both worked out in a
        hashing worker: matching (index searches, image verification) is most of a
        crawl's CPU, and the workers spread it over the cores."""
        signals, findings, featured = await asyncio.get_running_loop().run_in_executor(
            self._pool,
            fingerprint_and_match,
            path,
            self.hash_options,
            self.workspace.home,
            self.match_rules,
            self._lazy_local_features,
        )
        self.summary.images_local_features += featured
        return signals, findings

    def _unmatched_duplicate(self, sha256: str | None) -> int | None:
        if sha256 is None:
            return None
        if sha256 in self._unmatched_sha:
            return self._unmatched_sha[sha256]
        if not _has_prefix(self._earlier_content, sha256):
            return None  # no earlier item has these bytes: no store query (most media)
        with self.workspace.store.read_session() as session:
            query = (
                select(ScannedItem.id)
                .where(ScannedItem.sha256 == sha256, ScannedItem.error.is_(None))
                .where(~select(Match.id).where(Match.item_id == ScannedItem.id).exists())
                .order_by(ScannedItem.id.desc())
                .limit(1)
            )
            if self._newest_reference_at is not None:
                # Older items predate a reference they were never matched against.
                query = query.where(ScannedItem.scanned_at >= self._newest_reference_at)
            return session.execute(query).scalar()

    def _write_duplicate(
        self,
        session: Session,
        row_id: int,
        location: str,
        first: UnwrittenContent,
        result: FetchResult,
        page: FetchResult | None,
    ) -> None:
        if first.item_id is not None and not first.matched:
            self.summary.media_duplicate_content += 1
            self._finish_in(
                session,
                row_id,
                "done",
                result=result,
                outcome="duplicate_content",
                item=first.item_id,
            )
        else:  # the first copy matched (or failed): this location gets its own item
            self._write_media(
                session,
                row_id,
                location,
                UnwrittenContent(first.signals, first.findings),
                result,
                page,
            )

    def _write_media(
        self,
        session: Session,
        row_id: int,
        location: str,
        content: UnwrittenContent,
        result: FetchResult,
        page: FetchResult | None,
    ) -> None:
        """Item, signals, matches, takedowns, evidence and the frontier row: one transaction."""
        item, matches = record_item(
            session, self.workspace, content.signals, location, self.match_rules, content.findings
        )
        if matches:
            fetches = ([("page", page)] if page is not None else []) + [("media", result)]
            bundle = self.evidence.write_bundle(
                fetches, note=f"ansim crawl run {self.run_id}: match at {location}"
            )
            for takedown_id in sorted({m.takedown_id for m in matches if m.takedown_id}):
                session.add(
                    Evidence(
                        bundle_id=bundle.bundle_id,
                        takedown_id=takedown_id,
                        item_id=item.id,
                        page_url=page.final_url if page is not None else None,
                        media_url=location,
                        warc_sha256=bundle.warc_sha256,
                        records=bundle.records,
                    )
                )
            self.summary.evidence += 1
        self._finish_in(session, row_id, "done", result=result, outcome="ok", item=item.id)
        session.flush()
        content.item_id, content.matched = item.id, bool(matches)
        self._written.append((item, matches))

    async def _process_text(self, row: Row[Any], page: FetchResult, text: str) -> None:
        """Page text through the detector when a text hasher exists (skipped otherwise)."""
        assert self._work_dir is not None
        path = self._work_dir / f"text-{row.id}.txt"
        path.write_text(text, encoding="utf-8")
        try:
            signals, findings = await self._fingerprint(path)
        except UnsupportedMedia:
            return
        except MediaError as exc:
            log.info("page text of %s not fingerprinted: %s", row.url, exc)
            return
        finally:
            path.unlink(missing_ok=True)
        self.summary.texts_hashed += 1
        # Written in the page's batch, just before the page's own frontier row.
        self._defer(row.id, lambda s: self._write_text(s, row, page, signals, findings))

    def _write_text(
        self,
        session: Session,
        row: Row[Any],
        page: FetchResult,
        signals: MediaSignals,
        findings: list[Finding],
    ) -> None:
        item, matches = record_item(
            session,
            self.workspace,
            signals,
            page.final_url or row.url,
            self.match_rules,
            findings,
        )
        if matches:
            bundle = self.evidence.write_bundle(
                [("page", page)], note=f"ansim crawl run {self.run_id}: text match"
            )
            session.add(
                Evidence(
                    bundle_id=bundle.bundle_id,
                    takedown_id=next((m.takedown_id for m in matches if m.takedown_id), None),
                    item_id=item.id,
                    page_url=page.final_url,
                    media_url=page.final_url or row.url,
                    warc_sha256=bundle.warc_sha256,
                    records=bundle.records,
                )
            )
        session.flush()
        self._written.append((item, matches))

    # ------------------------------------------------------------------ bookkeeping

    def _note_matches(self, matches: list[ScanMatch]) -> None:
        self.summary.matches += len(matches)
        self.summary.takedowns += [m.takedown_id for m in matches if m.takedown_id]
        self.summary.seconds_to_last_match = time.monotonic() - self.summary.started
        for m in matches:
            log.warning("match %s -> case %s: %s", m.location, m.case_id, m.explanation)
            if len(self.summary.match_list) < MAX_LISTED_MATCHES:
                self.summary.match_list.append(m.as_dict())

    def _finish(self, row_id: int, state: str, **details: Any) -> None:
        self._defer(row_id, lambda s: self._finish_in(s, row_id, state, **details))

    # ------------------------------------------------------------------ batched writes

    def _defer(self, row_id: int, write: Callable[[Session], None]) -> None:
        """Queue one URL's writes for the next batch; write it when the batch is due."""
        if not self._batch:
            self._batch_opened = time.monotonic()
        self._batch.append((row_id, write))
        self._unwritten.add(row_id)
        if (
            len(self._batch) >= COMMIT_EVERY_URLS
            or time.monotonic() - self._batch_opened >= COMMIT_INTERVAL_S
        ):
            self._write_batch()

    def _discard_after_write(self, result: FetchResult) -> None:
        """A fetched body stays on disk until the writes that may need it for evidence ran."""
        if self._batch:
            self._discard_later.append(result)
        else:
            result.discard()

    async def _write_on_interval(self) -> None:
        """Write a batch left waiting while every worker waits on the network."""
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_S / 2)
            if self._batch and time.monotonic() - self._batch_opened >= COMMIT_INTERVAL_S:
                self._write_batch()

    def _write_batch(self) -> None:
        """One transaction for the queued URLs, each in its own SAVEPOINT: a URL whose
        writes fail rolls back alone and is finished as failed."""
        batch, self._batch = self._batch, []
        discards, self._discard_later = self._discard_later, []
        self._written = []
        try:
            if batch:
                with self.workspace.store.session() as session:
                    for row_id, write in batch:
                        finished_before = len(self._finishes)
                        try:
                            with session.begin_nested():
                                write(session)
                        except Exception:
                            log.exception("writing crawl url %d failed", row_id)
                            del self._finishes[finished_before:]
                            self._finish_in(session, row_id, "failed", outcome="internal_error")
                    self._run_finishes(session)
                self.workspace.anchor_audit_head()
        except Exception:
            # Nothing of the batch is recorded; its URLs stay pending for `--resume`.
            log.exception("writing a batch of %d finished URLs failed", len(batch))
            self._stop_reason = "store write failed"
            self._written, self._finishes = [], []
        finally:
            self._unwritten.clear()
            self._unwritten_content.clear()
            for result in discards:
                result.discard()
        for item, matches in self._written:
            self._history_rows.extend(item.signals)
            if matches:
                self._note_matches(matches)
            elif item.sha256 and item.modality != "text":
                self._unmatched_sha[item.sha256] = item.id
        self._written = []
        self._flush_history()
        self._wake.set()

    def _finish_in(
        self,
        _session: Session,
        row_id: int,
        state: str,
        result: FetchResult | None = None,
        outcome: str | None = None,
        error: str | None = None,
        item: int | None = None,
    ) -> None:
        """The frontier row's finish, run with the batch's other finishes at its end (one
        executemany in the same transaction as what the URL produced)."""
        values: dict[str, Any] = dict.fromkeys(FINISH_COLUMNS)
        values.update(row_id=row_id, state=state, fetched_at=utcnow(), item_id=item)
        if result is not None:
            values.update(
                outcome=outcome or result.outcome,
                error=error or result.error or None,
                http_status=result.status,
                final_url=result.final_url,
                content_type=(result.content_type or "")[:128] or None,
                size=result.size,
                sha256=result.sha256,
                resolved_ip=result.resolved_ip,
            )
        else:
            values.update(outcome=outcome, error=error)
        self._finishes.append(values)

    def _run_finishes(self, session: Session) -> None:
        finishes, self._finishes = self._finishes, []
        if not finishes:
            return
        session.connection().execute(
            FINISH_ROW,
            [
                {"row_id": v["row_id"], **{f"new_{name}": v[name] for name in FINISH_COLUMNS}}
                for v in finishes
            ],
        )
        for values in finishes:
            self.summary.outcomes[values["outcome"] or values["state"]] += 1
            if values["state"] != "done":
                log.info(
                    "%s %s: %s",
                    values["state"],
                    values["row_id"],
                    values["error"] or values["outcome"],
                )

    def _flush_history(self, force: bool = False) -> None:
        """Crawled signals into the crawl-history index, in batches (the store already has
        them; an index behind the store is rebuilt from it on next open)."""
        if self._history_rows and (force or len(self._history_rows) >= HISTORY_FLUSH_ROWS):
            rows, self._history_rows = self._history_rows, []
            self.history.add(rows)


def _content_prefixes(session: Session, since: datetime | None) -> np.ndarray:
    """The first 8 bytes (sorted) of the SHA-256 of every item that a fetched file could be
    a duplicate of: scanned without error, and not before the newest reference. Asking
    the store about every fetched file cost a crawl ~2 ms of CPU per media; with this
    (8 MB per million items) it asks only when the prefix is there."""
    query = select(ScannedItem.sha256).where(
        ScannedItem.sha256.is_not(None), ScannedItem.error.is_(None)
    )
    if since is not None:
        query = query.where(ScannedItem.scanned_at >= since)
    hexes = session.execute(query).scalars()
    return np.unique(np.fromiter((int(h[:16], 16) for h in hexes), np.uint64))


def _has_prefix(prefixes: np.ndarray, sha256: str) -> bool:
    prefix = np.uint64(int(sha256[:16], 16))
    position = int(np.searchsorted(prefixes, prefix))
    return position < len(prefixes) and prefixes[position] == prefix


# Per hashing worker: the store and reference banks it matches against (opened once).
_matching_banks: dict[Home, tuple[Store, Banks]] = {}


def release_matching_banks(home: Home) -> None:
    """Close this process's matching store for `home` (its connections) if it has one."""
    opened = _matching_banks.pop(home, None)
    if opened is not None:
        opened[0].dispose()


def fingerprint_and_match(
    path: Path, options: HashOptions, home: Home, rules: MatchRules, lazy_local_features: bool
) -> tuple[MediaSignals, list[Finding], bool]:
    """In a hashing worker: the file's signals, the references they match, and whether ORB
    features were added on demand (triage: only an image with a candidate to verify).
    The banks reload themselves when a reference is added during the crawl."""
    signals = hash_file(path, options)
    if home not in _matching_banks:
        _matching_banks[home] = (Store(home.db_url), Banks(home.index_dir))
    store, banks = _matching_banks[home]
    featured = False
    with store.read_session() as session:
        if (
            lazy_local_features
            and signals.modality == "image"
            and needs_local_features(session, banks, signals, rules)
        ):
            signals.extra[LOCAL_FEATURES_KIND] = local_features_file(path, options.image)
            featured = True
        findings = find_matches(session, banks, signals, rules)
    return signals, findings, featured


def _init_hash_worker() -> None:
    """A hashing process runs one job at a time beside one per core: OpenCV's and FAISS's
    own thread pools would only add spin-waits."""
    faiss.omp_set_num_threads(1)
    if opencv_available():
        import cv2

        cv2.setNumThreads(1)


def _looks_like_html(head: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    lowered = head[:1024].lower()
    return any(marker in lowered for marker in HTML_MARKERS)


def run_summary(workspace: Workspace, run_id: int) -> dict[str, Any]:
    with workspace.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise CaseworkError(f"unknown crawl run {run_id}")
        return json.loads(run.summary or "{}")


def export_evidence(workspace: Workspace, evidence_id: int, out_dir: Path) -> dict[str, Any]:
    """Decrypt one evidence bundle (WARC + manifest) into `out_dir`, digests checked; audited."""
    from ansim.store import audit

    with workspace.session() as session:
        row = session.get(Evidence, evidence_id)
        if row is None:
            raise CaseworkError(f"unknown evidence id {evidence_id}")
        store = EvidenceStore(workspace.home.root / "evidence", workspace.cipher.fernet())
        try:
            paths = store.export(row.bundle_id, out_dir)
        except EvidenceError as exc:
            raise CaseworkError(f"evidence {evidence_id}: {exc}") from exc
        audit.record(
            session,
            workspace.actor,
            "evidence.export",
            f"evidence:{evidence_id}",
            {"takedown": row.takedown_id, "to": str(out_dir), "warc_sha256": row.warc_sha256},
        )
        return {
            "evidence_id": evidence_id,
            "takedown_id": row.takedown_id,
            "files": [str(p) for p in paths],
            "warc_sha256": row.warc_sha256,
        }


def scan_urls(
    workspace: Workspace,
    urls: list[str],
    allow_loopback: bool = False,
    on_progress: Callable[[CrawlSummary], None] | None = None,
) -> CrawlSummary:
    """`ansim scan URL...`: each page (and the media on it) or media URL, with the crawl's
    fetcher and guards, recorded and queued like a crawl of depth 0."""
    options = CrawlOptions(
        seeds=urls,
        max_pages=len(urls),
        max_depth=0,
        allow_loopback=allow_loopback,
        min_delay_s=0.0,
        workers=min(8, max(1, len(urls))),
    )
    return run_crawl(workspace, options, on_progress=on_progress)
