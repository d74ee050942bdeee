"""The write batch: finished URLs' store writes, committed together.

The crawl's store work runs in one transaction that commits every `every_urls` finished
URLs or `interval_s` seconds, whichever comes first: a commit per URL cost more CPU than
the URL's own work, and the interval bounds how long the crawl holds SQLite's write lock
and how much a kill makes `--resume` fetch again. Each URL's writes sit in their own
SAVEPOINT, so a URL whose writes fail rolls back alone and is finished as failed. The
frontier rows' finishes run last, as one executemany in the same transaction as what
their URLs produced. A URL counts as in flight until its batch commits: a kill loses the
whole open batch, which `--resume` fetches again, and nothing of it was recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ansim.casework.workspace import Workspace
from ansim.crawler.fetch import FetchResult
from ansim.pipeline.crawl.frontier import finish_values, write_finishes
from sqlalchemy.orm import Session

log = logging.getLogger("ansim.crawl")

# Measured trade-offs behind these two: benchmarks/crawl_bench.py (`ansim bench crawl`).
COMMIT_EVERY_URLS = 64
COMMIT_INTERVAL_S = 0.25

Write = Callable[[Session], None]


class WriteBatch:
    def __init__(
        self,
        workspace: Workspace,
        outcomes: Counter[str],
        after_write: Callable[[bool], None],
        every_urls: int = COMMIT_EVERY_URLS,
        interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        """`outcomes` counts the finishes written; `after_write(committed)` runs after
        every batch, whether it committed or not."""
        self.workspace = workspace
        self.outcomes = outcomes
        self.after_write = after_write
        self.every_urls = every_urls
        self.interval_s = interval_s
        # Row ids with writes in the open batch: still pending in the store.
        self.row_ids: set[int] = set()
        self._writes: list[tuple[int, Write]] = []
        self._opened = 0.0
        self._finishes: list[dict[str, Any]] = []
        self._discard_later: list[FetchResult] = []

    def __len__(self) -> int:
        return len(self._writes)

    def defer(self, row_id: int, write: Write) -> None:
        """Queue one URL's writes for the batch; write the batch when it is due."""
        if not self._writes:
            self._opened = time.monotonic()
        self._writes.append((row_id, write))
        self.row_ids.add(row_id)
        if len(self._writes) >= self.every_urls or self._overdue():
            self.write()

    def finish(self, row_id: int, state: str, **details: Any) -> None:
        """Queue a URL's frontier row finish (and nothing else) for the batch."""
        self.defer(row_id, lambda _session: self.finish_in_batch(row_id, state, **details))

    def finish_in_batch(self, row_id: int, state: str, **details: Any) -> None:
        """From a write running in the batch: its URL's frontier row finish, written with
        the batch's other finishes at its end."""
        self._finishes.append(finish_values(row_id, state, **details))

    def discard_after_write(self, result: FetchResult) -> None:
        """A fetched body stays on disk until the writes that may need it for evidence ran."""
        if self._writes:
            self._discard_later.append(result)
        else:
            result.discard()

    def _overdue(self) -> bool:
        return time.monotonic() - self._opened >= self.interval_s

    async def write_on_interval(self) -> None:
        """Write a batch left waiting while every worker waits on the network."""
        while True:
            await asyncio.sleep(self.interval_s / 2)
            if self._writes and self._overdue():
                self.write()

    def write(self) -> None:
        """One transaction for the queued URLs, each in its own SAVEPOINT."""
        writes, self._writes = self._writes, []
        discards, self._discard_later = self._discard_later, []
        committed = True
        try:
            if writes:
                with self.workspace.store.session() as session:
                    for row_id, write in writes:
                        finished_before = len(self._finishes)
                        try:
                            with session.begin_nested():
                                write(session)
                        except Exception:
                            log.exception("writing crawl url %d failed", row_id)
                            del self._finishes[finished_before:]
                            self.finish_in_batch(row_id, "failed", outcome="internal_error")
                    self._write_finishes(session)
                self.workspace.anchor_audit_head()
        except Exception:
            # Nothing of the batch is recorded; its URLs stay pending for `--resume`.
            log.exception("writing a batch of %d finished URLs failed", len(writes))
            self._finishes = []
            committed = False
        finally:
            self.row_ids.clear()
            for result in discards:
                result.discard()
        self.after_write(committed)

    def _write_finishes(self, session: Session) -> None:
        finishes, self._finishes = self._finishes, []
        write_finishes(session, finishes)
        for values in finishes:
            self.outcomes[values["outcome"] or values["state"]] += 1
            if values["state"] != "done":
                log.info(
                    "%s %s: %s",
                    values["state"],
                    values["row_id"],
                    values["error"] or values["outcome"],
                )
