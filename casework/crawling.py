"""Crawls: seeds -> frontier (in the store) -> fetch -> extract -> fingerprint -> match ->
takedown queue with sealed WARC evidence, and every crawled item into the crawl history.

Durability: the frontier and the visited set are the `crawl_url` table. A URL is finished
in the same transaction as everything its fetch produced, so after `kill -9` at any
moment `--resume` refetches only what was in flight (its results were never recorded)
and records everything exactly once. A page is finished only after all its media, so a
page in flight at the crash is fetched again and its finished media are skipped.

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

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from casework.banks import Banks
from casework.errors import CaseworkError
from casework.models import CrawlRun, CrawlUrl, Evidence, Match, Reference, ScannedItem, utcnow
from casework.scanning import ScanMatch, record_item
from casework.workspace import Workspace
from crawler.evidence import EvidenceError, EvidenceStore
from crawler.extract import extract_page
from crawler.fetch import Fetcher, FetchLimits, FetchResult
from crawler.guard import AddressPolicy
from crawler.politeness import Politeness, PolitenessConfig
from crawler.robots import RobotsCache
from crawler.urls import Scope, normalize_url
from detector.errors import MediaError, UnsupportedMedia
from detector.hashing import HashOptions, hash_file
from detector.signals import MediaSignals
from detector.sniff import sniff_bytes

log = logging.getLogger("ansim.crawl")

HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<a ", b"<img", b"<div", b"<p>")
HISTORY_FLUSH_ROWS = 2000
MEDIA_PER_PAGE_CONCURRENCY = 8
MAX_LISTED_MATCHES = 1000
CLAIM_BATCH = 200


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

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CrawlOptions:
        return cls(**json.loads(text))


@dataclass
class CrawlSummary:
    run_id: int
    pages: int = 0
    media: int = 0
    media_hashed: int = 0
    media_duplicate_content: int = 0
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
        with crawl.logging_to_file():
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
        self.hash_options = HashOptions(max_file_bytes=options.max_response_bytes)
        self._claimed: set[int] = set()
        self._buffer: list[CrawlUrl] = []
        self._finished_pages = -1  # counted from the store on the first refill
        self._wake = asyncio.Event()
        self._media_in_flight: set[str] = set()
        self._active = 0
        self._pages_started = 0
        self._history_rows: list[Any] = []
        self._unmatched_sha: dict[str, int] = {}
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
        processes = options.hash_processes or os.cpu_count() or 1
        pool: Executor
        if processes == 1:
            pool = ThreadPoolExecutor(1)
        else:
            # forkserver: never fork a process that holds sockets, threads and the store.
            pool = ProcessPoolExecutor(processes, mp_context=get_context("forkserver"))
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
                workers = [asyncio.create_task(self._worker()) for _ in range(options.workers)]
                await asyncio.gather(*workers)
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

    async def _next_page(self) -> CrawlUrl | None:
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
                select(CrawlUrl)
                .where(
                    CrawlUrl.run_id == self.run_id,
                    CrawlUrl.kind == "page",
                    CrawlUrl.state == "pending",
                )
                .order_by(CrawlUrl.depth, CrawlUrl.id)
                .limit(len(self._claimed) + CLAIM_BATCH)
            )
            self._buffer = [
                r for r in session.execute(query).scalars() if r.id not in self._claimed
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

    async def _process_page(self, row: CrawlUrl) -> None:
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
            if row.depth < self.options.max_depth:
                self._enqueue_pages(row, [link.url for link in content.links])
            media_rows = self._enqueue_media(row, [m.url for m in content.media])
            limiter = asyncio.Semaphore(MEDIA_PER_PAGE_CONCURRENCY)

            async def one(media_id: int, media_url: str) -> None:
                async with limiter:
                    await self._process_media(media_id, media_url, result)

            await asyncio.gather(*(one(media_id, url) for media_id, url in media_rows))
            if content.text:
                await self._process_text(row, result, content.text)
            self._finish(row.id, "done", result=result, outcome="ok")
        finally:
            result.discard()

    def _enqueue_pages(self, parent: CrawlUrl, urls: list[str]) -> None:
        wanted = {}
        for url in urls:
            if self.scope.allows(url):
                wanted[url_hash(url)] = url
            else:
                self.summary.outcomes["out_of_scope"] += 1
        if wanted:
            self._insert_new(parent, wanted, "page", parent.depth + 1)
            self._buffer = []  # re-read in depth order next time
            self._wake.set()

    def _enqueue_media(self, page: CrawlUrl, urls: list[str]) -> list[tuple[int, str]]:
        """Media of a page not yet seen in this run (the visited set): (row id, url)."""
        wanted = {url_hash(url): url for url in urls if url not in self._media_in_flight}
        if not wanted:
            return []
        self._insert_new(page, wanted, "media", page.depth)
        with self.workspace.store.session() as session:
            rows = session.execute(
                select(CrawlUrl.id, CrawlUrl.url).where(
                    CrawlUrl.run_id == self.run_id,
                    CrawlUrl.url_hash.in_(list(wanted)),
                    CrawlUrl.state == "pending",
                )
            ).all()
        pending = [(row_id, url) for row_id, url in rows if url not in self._media_in_flight]
        self._media_in_flight.update(url for _, url in pending)
        return pending

    def _insert_new(self, parent: CrawlUrl, wanted: dict[str, str], kind: str, depth: int) -> None:
        with self.workspace.store.session() as session:
            known = set(
                session.execute(
                    select(CrawlUrl.url_hash).where(
                        CrawlUrl.run_id == self.run_id, CrawlUrl.url_hash.in_(list(wanted))
                    )
                ).scalars()
            )
            for digest, url in wanted.items():
                if digest not in known:
                    session.add(
                        CrawlUrl(
                            run_id=self.run_id,
                            url=url,
                            url_hash=digest,
                            kind=kind,
                            depth=depth,
                            referrer_id=parent.id,
                        )
                    )

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
                result.discard()
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
            signals = await asyncio.get_running_loop().run_in_executor(
                self._pool, hash_file, result.body_path, self.hash_options
            )
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
        self._record(row_id, location, signals, result, page)

    def _unmatched_duplicate(self, sha256: str | None) -> int | None:
        if sha256 is None:
            return None
        if sha256 in self._unmatched_sha:
            return self._unmatched_sha[sha256]
        with self.workspace.store.session() as session:
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

    def _record(
        self,
        row_id: int,
        location: str,
        signals: MediaSignals,
        result: FetchResult,
        page: FetchResult | None,
    ) -> list[ScanMatch]:
        """Item, signals, matches, takedowns, evidence and the frontier row: one transaction."""
        with self.workspace.session() as session:
            item, matches = record_item(session, self.workspace, signals, location)
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
        self._history_rows.extend(item.signals)
        self._flush_history()
        if matches:
            self._note_matches(matches)
        elif signals.sha256:
            self._unmatched_sha[signals.sha256] = item.id
        return matches

    async def _process_text(self, row: CrawlUrl, page: FetchResult, text: str) -> None:
        """Page text through the detector when a text hasher exists (skipped otherwise)."""
        assert self._work_dir is not None
        path = self._work_dir / f"text-{row.id}.txt"
        path.write_text(text, encoding="utf-8")
        try:
            signals = await asyncio.get_running_loop().run_in_executor(
                self._pool, hash_file, path, self.hash_options
            )
        except UnsupportedMedia:
            return
        except MediaError as exc:
            log.info("page text of %s not fingerprinted: %s", row.url, exc)
            return
        finally:
            path.unlink(missing_ok=True)
        self.summary.texts_hashed += 1
        with self.workspace.session() as session:
            item, matches = record_item(session, self.workspace, signals, page.final_url or row.url)
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
        if matches:
            self._note_matches(matches)
        self._history_rows.extend(item.signals)

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
        with self.workspace.store.session() as session:
            self._finish_in(session, row_id, state, **details)

    def _finish_in(
        self,
        session: Session,
        row_id: int,
        state: str,
        result: FetchResult | None = None,
        outcome: str | None = None,
        error: str | None = None,
        item: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "fetched_at": utcnow()}
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
        if item is not None:
            values["item_id"] = item
        # No CrawlUrl objects live in these sessions: skip the ORM's identity-map
        # synchronisation, which cost more than the UPDATE itself.
        session.execute(
            update(CrawlUrl).where(CrawlUrl.id == row_id).values(**values),
            execution_options={"synchronize_session": False},
        )
        self.summary.outcomes[values["outcome"] or state] += 1
        if state != "done":
            log.info("%s %s: %s", state, row_id, values.get("error") or values["outcome"])

    def _flush_history(self, force: bool = False) -> None:
        """Crawled signals into the crawl-history index, in batches (the store already has
        them; an index behind the store is rebuilt from it on next open)."""
        if self._history_rows and (force or len(self._history_rows) >= HISTORY_FLUSH_ROWS):
            rows, self._history_rows = self._history_rows, []
            self.history.add(rows)


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
    from casework import audit

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
