"""The crawl loop: workers claim pages from the frontier, fetch them, send their media and
text to the hashing workers, and queue what each URL produced in the write batch. The
parts it composes are documented in `ansim.pipeline.crawl`."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.crawler.extract import PageRefused
from ansim.crawler.fetch import Fetcher, FetchResult
from ansim.crawler.guard import AddressPolicy
from ansim.crawler.politeness import Politeness
from ansim.crawler.robots import RobotsCache
from ansim.crawler.urls import normalize_url
from ansim.detector.errors import MediaError, UnsupportedMedia
from ansim.detector.faiss_threads import one_faiss_thread
from ansim.detector.signals import MediaSignals
from ansim.detector.sniff import sniff_bytes
from ansim.pipeline.crawl.batch import WriteBatch
from ansim.pipeline.crawl.dedup import ContentDedup, UnwrittenContent
from ansim.pipeline.crawl.frontier import Frontier, url_hash
from ansim.pipeline.crawl.hashing import HashingPlan, crawl_workers, losses_in, lost_error
from ansim.pipeline.crawl.history import HistoryFlushes
from ansim.pipeline.crawl.options import CrawlOptions
from ansim.pipeline.crawl.recorder import CrawlSummary, Recorder
from ansim.pipeline.matching import Finding
from ansim.pipeline.workers import Budgets, WorkerLost, load_budgets
from ansim.store.private_files import clear_work_dir
from ansim.store.tables import CrawlRun, CrawlUrl
from sqlalchemy import select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

log = logging.getLogger("ansim.crawl")

HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<a ", b"<img", b"<div", b"<p>")
MEDIA_PER_PAGE_CONCURRENCY = 8
# A URL's outcome when the worker hashing or parsing it died, was killed or hung.
WORKER_LOST_OUTCOME = "worker_lost"


# The key of the crawl's PostgreSQL advisory lock: one crawl per database, from any machine.
CRAWL_LOCK_KEY = int.from_bytes(b"ansimcrl", "big") & ((1 << 63) - 1)


@contextmanager
def crawl_lock(workspace: Workspace) -> Iterator[None]:
    """Only one crawl per home; a second one is refused at once, not queued.

    On PostgreSQL, a session advisory lock on the database (crawls of one store may start
    on several machines); the server releases it when the holding connection goes, however
    the process dies. On SQLite, an exclusive flock on the home's `crawl.lock`, which the
    kernel releases however the process dies."""
    if workspace.store.engine.dialect.name == "postgresql":
        with advisory_crawl_lock(workspace):
            yield
        return
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


@contextmanager
def advisory_crawl_lock(workspace: Workspace) -> Iterator[None]:
    """`pg_try_advisory_lock` on a connection of its own, held for the crawl."""
    with workspace.store.engine.connect() as connection:
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": CRAWL_LOCK_KEY}
        ).scalar_one()
        connection.commit()  # no transaction stays open for the crawl's length
        if not taken:
            holder = connection.execute(
                text(
                    "SELECT a.client_addr, a.pid FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND (l.classid::bigint << 32) + l.objid::bigint = :key"
                ),
                {"key": CRAWL_LOCK_KEY},
            ).first()
            connection.commit()
            who = (
                f"database connection pid {holder.pid} from {holder.client_addr or 'local'}"
                if holder
                else "another connection"
            )
            raise CaseworkError(
                f"another crawl is running on this database ({who}; PostgreSQL advisory lock)"
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CRAWL_LOCK_KEY})
            connection.commit()


def start_run(workspace: Workspace, options: CrawlOptions) -> int:
    """A new run with its seeds in the frontier; returns its id."""
    options.check()
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
        budgets = load_budgets(workspace.home.root)
        earlier_losses: dict[int, int] = {}
        if resume:
            run_id = latest_unfinished_run(workspace)
            with workspace.session() as session:
                options = CrawlOptions.from_json(session.get(CrawlRun, run_id).options)
                earlier_losses = reopen_lost_urls(session, run_id, budgets.max_item_kills)
        else:
            assert options is not None
            run_id = start_run(workspace, options)
        crawl = Crawl(workspace, options, run_id, on_progress, budgets, earlier_losses)
        crawl.summary.resumed = resume
        # The hashing workers keep every core busy: FAISS threads here (history index adds,
        # its one training) would only spin-wait against them.
        with crawl.recorder.logging_to_file(), one_faiss_thread():
            asyncio.run(crawl.run())
        return crawl.summary


def reopen_lost_urls(session: Session, run_id: int, max_losses: int) -> dict[int, int]:
    """URLs of the run that failed only because their worker was lost, fewer than
    `max_losses` times: pending again, for this resume. Returns {row id: losses so far}."""
    rows = session.execute(
        select(CrawlUrl.id, CrawlUrl.error).where(
            CrawlUrl.run_id == run_id,
            CrawlUrl.state == "failed",
            CrawlUrl.outcome == WORKER_LOST_OUTCOME,
        )
    ).all()
    losses = {row.id: losses_in(row.error) for row in rows}
    retried = [row_id for row_id, count in losses.items() if count < max_losses]
    if retried:
        session.execute(update(CrawlUrl).where(CrawlUrl.id.in_(retried)).values(state="pending"))
    return {row_id: losses[row_id] for row_id in retried}


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


class Crawl:
    """One run of the crawl loop over its parts: frontier, write batch, content de-dup,
    recorder, hashing workers and history flushes."""

    def __init__(
        self,
        workspace: Workspace,
        options: CrawlOptions,
        run_id: int,
        on_progress: Callable[[CrawlSummary], None] | None = None,
        budgets: Budgets = Budgets(),
        earlier_losses: dict[int, int] | None = None,
    ) -> None:
        """`earlier_losses`: URLs reopened for this resume, with the workers each cost."""
        self.workspace = workspace
        self.options = options
        self.run_id = run_id
        self.on_progress = on_progress
        plan = HashingPlan.for_verification(options.image_verification, options.max_response_bytes)
        self.recorder = Recorder(workspace, run_id, plan.rules)
        self.summary = self.recorder.summary
        self.history = HistoryFlushes(workspace.home)
        self.dedup = ContentDedup(workspace.store)
        self.batch = WriteBatch(workspace, self.summary.outcomes, self._after_batch)
        self.frontier = Frontier(
            workspace.store, run_id, options.crawl_scope(), waiting=self.batch.row_ids
        )
        self.budgets = budgets
        self.earlier_losses = earlier_losses or {}
        self.hashing = crawl_workers(
            workspace.home,
            plan,
            budgets,
            options.hash_processes,
            options.engine,
            options.ray_address,
        )
        # URLs lost with a worker that a `--resume` may try again.
        self.retryable_losses = 0
        # Fetched bodies (and page texts) stay under the home (0700), never in /tmp: a
        # killed run's leftovers are removed when the next crawl starts.
        clear_work_dir(workspace.home.work_dir)
        self.work_dir = workspace.home.work_dir / f"run-{run_id}"
        self.fetcher = Fetcher(
            work_dir=self.work_dir,
            limits=options.fetch_limits(),
            policy=AddressPolicy(allow_loopback=options.allow_loopback),
            politeness=Politeness(options.politeness()),
            max_connections=max(options.workers * 2, 16),
        )
        self.robots = RobotsCache(self.fetcher, ignore_hosts=set(options.ignore_robots_hosts))
        self._active = 0
        self._stop_reason: str | None = None

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        with self.workspace.session() as session:
            self.history.ensure_consistent(session)
        self.dedup.load_earlier()
        log.info("crawl run %d starting", self.run_id)  # no seeds: logs are not purged
        with self.hashing:
            async with self.fetcher:
                writer = asyncio.create_task(self.batch.write_on_interval())
                await self._retry_lost_media()
                workers = [asyncio.create_task(self._worker()) for _ in range(self.options.workers)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    writer.cancel()
                    self.batch.write()  # before the fetched bodies' folder goes
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.history.flush(force=True)
        self.summary.outcomes.update(
            {f"robots_{k}": v for k, v in self.robots.counts.items() if k != "allowed"}
        )
        stopped = self._stop_reason
        # A run with URLs lost to a worker stays open: `--resume` tries them again.
        self.recorder.close_run(
            finished=(stopped is None or stopped.startswith("max")) and not self.retryable_losses
        )

    async def _retry_lost_media(self) -> None:
        """On resume: media reopened after losing their worker, whose pages are done."""
        if not self.earlier_losses:
            return
        with self.workspace.store.read_session() as session:
            rows = session.execute(
                select(CrawlUrl.id, CrawlUrl.url).where(
                    CrawlUrl.id.in_(list(self.earlier_losses)), CrawlUrl.kind == "media"
                )
            ).all()
        limiter = asyncio.Semaphore(MEDIA_PER_PAGE_CONCURRENCY)

        async def one(row_id: int, url: str) -> None:
            async with limiter:
                self.frontier.media_in_flight.add(url)
                await self._process_media(row_id, url, None)

        await asyncio.gather(*(one(row.id, row.url) for row in rows))

    def _finish_lost(self, row_id: int, result: FetchResult, lost: WorkerLost) -> None:
        """A URL whose worker died, was killed or hung: failed with the reason, and open to
        `--resume` until it has cost `max_item_kills` workers."""
        losses = self.earlier_losses.get(row_id, 0) + 1
        most = self.budgets.max_item_kills
        self.retryable_losses += losses < most
        error = lost_error(losses, most, str(lost))
        self.batch.finish(row_id, "failed", result=result, outcome=WORKER_LOST_OUTCOME, error=error)

    async def _worker(self) -> None:
        while (row := await self._next_page()) is not None:
            self._active += 1
            try:
                await self._process_page(row)
            except Exception:  # one page must never end the crawl
                log.exception("page (crawl url %d) failed unexpectedly", row.id)
                self.batch.finish(row.id, "failed", outcome="internal_error")
            finally:
                self._active -= 1
                self.frontier.page_done(row.id)
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
            if self.frontier.started_pages() >= self.options.max_pages:
                if not self.frontier.claimed:
                    self._stop_reason = "max pages reached"
                    return None
            else:
                row = self.frontier.claim()
                if row is not None:
                    return row
                if self._active == 0:
                    return None
            # Wait for a page to finish (and maybe add links) instead of polling the store.
            self.frontier.changed.clear()
            await self.frontier.changed.wait()

    def _after_batch(self, committed: bool) -> None:
        """A batch was written: its items go on to the history, its matches into the
        summary, and unmatched content into the de-dup layers."""
        if not committed:
            self._stop_reason = "store write failed"
        self.dedup.batch_written()
        written = self.recorder.take_written()
        for item, matches in written if committed else []:
            self.history.add(item.signals)
            if matches:
                self.recorder.note_matches(matches)
            self.dedup.written(item.sha256, item.id, item.modality, matched=bool(matches))
        self.history.flush()
        self.frontier.changed.set()

    # ------------------------------------------------------------------ pages

    async def _permit(self, url: str) -> str | None:
        """Every redirect hop of a page stays in scope and obeys robots.txt."""
        if not self.frontier.scope.allows(url):
            return "out of crawl scope"
        return await self.robots.refusal(url)

    async def _permit_media(self, url: str) -> str | None:
        # Media may sit on another host (a CDN); robots.txt still rules it.
        return await self.robots.refusal(url)

    async def _process_page(self, row: Row[Any]) -> None:
        refusal = await self.robots.refusal(row.url)
        if refusal:
            self.batch.finish(row.id, "skipped", outcome="robots_disallowed", error=refusal)
            return
        result = await self.fetcher.fetch(row.url, permit=self._permit)
        self.summary.bytes += result.size
        if not result.ok:
            self.batch.finish(row.id, "failed", result=result)
            return
        try:
            head = result.read_body(4096)
            sniffed = sniff_bytes(head)
            if sniffed.modality in ("image", "video", "audio"):
                # A seed or link that is itself media (e.g. `ansim scan URL-of-image`).
                await self._media_from_fetch(row.id, row.url, result, page=None)
                return
            if not looks_like_html(head, result.content_type):
                self.batch.finish(row.id, "done", result=result, outcome="not_html")
                return
            self.summary.pages += 1
            assert result.body_path is not None
            try:
                content = await self.hashing.parse_page(
                    result.body_path, result.final_url or row.url
                )
            except PageRefused as exc:
                self.batch.finish(
                    row.id, "failed", result=result, outcome="page_refused", error=str(exc)
                )
                return
            links = (
                [link.url for link in content.links] if row.depth < self.options.max_depth else []
            )
            media_rows, out_of_scope = self.frontier.enqueue(
                row, links, [m.url for m in content.media]
            )
            if out_of_scope:
                self.summary.outcomes["out_of_scope"] += out_of_scope
            limiter = asyncio.Semaphore(MEDIA_PER_PAGE_CONCURRENCY)

            async def one(media_id: int, media_url: str) -> None:
                async with limiter:
                    await self._process_media(media_id, media_url, result)

            await asyncio.gather(*(one(media_id, url) for media_id, url in media_rows))
            if content.text:
                await self._process_text(row, result, content.text)
            self.batch.finish(row.id, "done", result=result, outcome="ok")
        except WorkerLost as lost:  # parsing the page, or hashing its text
            self._finish_lost(row.id, result, lost)
        finally:
            self.batch.discard_after_write(result)

    # ------------------------------------------------------------------ media

    async def _process_media(self, row_id: int, url: str, page: FetchResult | None) -> None:
        try:
            refusal = await self._permit_media(url)
            if refusal:
                self.batch.finish(row_id, "skipped", outcome="robots_disallowed", error=refusal)
                return
            result = await self.fetcher.fetch(url, permit=self._permit_media)
            self.summary.bytes += result.size
            if not result.ok:
                self.batch.finish(row_id, "failed", result=result)
                return
            try:
                await self._media_from_fetch(row_id, url, result, page)
            finally:
                self.batch.discard_after_write(result)
        except Exception:
            log.exception("media (crawl url %d) failed unexpectedly", row_id)
            self.batch.finish(row_id, "failed", outcome="internal_error")
        finally:
            self.frontier.media_done(url)

    async def _media_from_fetch(
        self, row_id: int, url: str, result: FetchResult, page: FetchResult | None
    ) -> None:
        self.summary.media += 1
        location = result.final_url or url
        sha256 = result.sha256 or ""
        await self.dedup.wait_for_first(sha256)
        first = self.dedup.in_batch(sha256) if result.sha256 else None
        if first is not None:
            # The same bytes wait in the open batch; whether they matched is known only
            # when it is written: decided there, with their signals (no second hash).
            self.batch.defer(
                row_id,
                lambda s: self._write_duplicate(s, row_id, location, first, result, page),
            )
            return
        known_item = self.dedup.unmatched_item(result.sha256)
        if known_item is not None:
            # Same bytes already fingerprinted and matched nothing since: hash once.
            self.summary.media_duplicate_content += 1
            self.batch.finish(
                row_id, "done", result=result, outcome="duplicate_content", item=known_item
            )
            return
        assert result.body_path is not None
        with self.dedup.fingerprinting(sha256):
            try:
                signals, findings = await self._fingerprint(result.body_path)
            except UnsupportedMedia as exc:
                # No hasher for this kind (yet): fetched, sniffed, counted, dropped.
                self.batch.finish(
                    row_id, "done", result=result, outcome="unsupported_media", error=str(exc)
                )
                return
            except MediaError as exc:
                self.batch.finish(
                    row_id, "failed", result=result, outcome="media_error", error=str(exc)
                )
                return
            except WorkerLost as lost:
                self._finish_lost(row_id, result, lost)
                return
        self.summary.media_hashed += 1
        content = UnwrittenContent(signals, findings)
        self.dedup.fingerprinted(content)
        self.batch.defer(
            row_id, lambda s: self._write_media(s, row_id, location, content, result, page)
        )

    async def _fingerprint(self, path: Path) -> tuple[MediaSignals, list[Finding]]:
        signals, findings, featured = await self.hashing.fingerprint(path)
        self.summary.images_local_features += featured
        return signals, findings

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
            self.batch.finish_in_batch(
                row_id, "done", result=result, outcome="duplicate_content", item=first.item_id
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
        item_id, matched = self.recorder.record_media(
            session, location, content.signals, content.findings, result, page
        )
        self.batch.finish_in_batch(row_id, "done", result=result, outcome="ok", item=item_id)
        content.item_id, content.matched = item_id, matched

    async def _process_text(self, row: Row[Any], page: FetchResult, text: str) -> None:
        """Page text through the detector when a text hasher exists (skipped otherwise)."""
        path = self.fetcher.work_dir / f"text-{row.id}.txt"
        path.write_text(text, encoding="utf-8")
        try:
            signals, findings = await self._fingerprint(path)
        except UnsupportedMedia:
            return
        except MediaError as exc:
            log.info("page text of crawl url %d not fingerprinted: %s", row.id, exc)
            return
        finally:
            path.unlink(missing_ok=True)
        self.summary.texts_hashed += 1
        location = page.final_url or row.url
        # Written in the page's batch, just before the page's own frontier row.
        self.batch.defer(
            row.id,
            lambda s: self.recorder.record_text(s, location, signals, findings, page),
        )


def looks_like_html(head: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    lowered = head[:1024].lower()
    return any(marker in lowered for marker in HTML_MARKERS)
