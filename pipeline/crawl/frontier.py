"""The crawl's frontier and visited set: the run's `crawl_url` rows in the store.

A URL is a row from the moment it is found (pending) until it is finished (done, skipped
or failed, with what its fetch gave). Pages are claimed shallowest first; a claimed page
stays claimed in memory until it is finished, so two workers never fetch one page. A
row whose finish waits in the open write batch is still pending in the store and is
never claimed again (`waiting`). Opening a frontier on a run that already finished pages
(`--resume`) counts them against the page limit and claims only the pending ones.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection
from typing import Any

from ansim.crawler.fetch import FetchResult
from ansim.crawler.urls import Scope
from ansim.store.db import Store
from ansim.store.tables import CrawlUrl, utcnow
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

CLAIM_BATCH = 200
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


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def finish_values(
    row_id: int,
    state: str,
    result: FetchResult | None = None,
    outcome: str | None = None,
    error: str | None = None,
    item: int | None = None,
) -> dict[str, Any]:
    """A frontier row's finish: every column of FINISH_COLUMNS, from what its fetch gave."""
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
    return values


def write_finishes(session: Session, finishes: list[dict[str, Any]]) -> None:
    """Finished rows in one executemany, no ORM objects (the batch's last statement)."""
    if not finishes:
        return
    session.connection().execute(
        FINISH_ROW,
        [
            {"row_id": v["row_id"], **{f"new_{name}": v[name] for name in FINISH_COLUMNS}}
            for v in finishes
        ],
    )


class Frontier:
    def __init__(self, store: Store, run_id: int, scope: Scope, waiting: Collection[int]) -> None:
        self.store = store
        self.run_id = run_id
        self.scope = scope
        # Row ids whose finish waits in the open write batch (the batch's own set).
        self.waiting = waiting
        # Set when the frontier may have changed: a page finished, links were added, a
        # batch was written. Idle workers wait on it instead of polling the store.
        self.changed = asyncio.Event()
        self.claimed: set[int] = set()
        self.media_in_flight: set[str] = set()
        self.finished_pages = self._count_finished_pages()
        self._buffer: list[Row[Any]] = []

    def _count_finished_pages(self) -> int:
        with self.store.read_session() as session:
            return session.execute(
                select(func.count(CrawlUrl.id)).where(
                    CrawlUrl.run_id == self.run_id,
                    CrawlUrl.kind == "page",
                    CrawlUrl.state != "pending",
                )
            ).scalar_one()

    def started_pages(self) -> int:
        """Pages finished or being worked on (what the page limit counts)."""
        return self.finished_pages + len(self.claimed)

    def claim(self) -> Row[Any] | None:
        """The next pending page (shallowest first), now claimed; None if none is pending."""
        if not self._buffer:
            self._refill()
        if not self._buffer:
            return None
        row = self._buffer.pop(0)
        self.claimed.add(row.id)
        return row

    def page_done(self, row_id: int) -> None:
        self.claimed.discard(row_id)
        self.finished_pages += 1
        self.changed.set()

    def _refill(self) -> None:
        with self.store.session() as session:
            query = (
                select(CrawlUrl.id, CrawlUrl.url, CrawlUrl.depth)
                .where(
                    CrawlUrl.run_id == self.run_id,
                    CrawlUrl.kind == "page",
                    CrawlUrl.state == "pending",
                )
                .order_by(CrawlUrl.depth, CrawlUrl.id)
                .limit(len(self.claimed) + len(self.waiting) + CLAIM_BATCH)
            )
            # Pages finished in memory but not yet written are still pending in the store.
            self._buffer = [
                r
                for r in session.execute(query)
                if r.id not in self.claimed and r.id not in self.waiting
            ]

    def enqueue(
        self, page: Row[Any], links: list[str], media: list[str]
    ) -> tuple[list[tuple[int, str]], int]:
        """A page's in-scope links and its media into the frontier, in one transaction.

        Returns the media not yet seen in this run, now in flight: (row id, url); and how
        many links were out of scope."""
        pages_wanted = {}
        out_of_scope = 0
        for url in links:
            if self.scope.allows(url):
                pages_wanted[url_hash(url)] = url
            else:
                out_of_scope += 1
        media_wanted = {url_hash(url): url for url in media if url not in self.media_in_flight}
        if not pages_wanted and not media_wanted:
            return [], out_of_scope
        with self.store.session() as session:
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
            self.changed.set()
        pending = [
            (row_id, url)
            for row_id, url in rows
            if url not in self.media_in_flight and row_id not in self.waiting
        ]
        self.media_in_flight.update(url for _, url in pending)
        return pending, out_of_scope

    def media_done(self, url: str) -> None:
        self.media_in_flight.discard(url)

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
