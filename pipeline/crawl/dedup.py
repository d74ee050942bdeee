"""Content de-dup: the same bytes are fingerprinted once, however many URLs serve them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from ansim.detector.signals import MediaSignals
from ansim.pipeline.matching import Finding
from ansim.store.db import Store
from ansim.store.tables import Match, Reference, ScannedItem
from sqlalchemy import func, select
from sqlalchemy.orm import Session


@dataclass
class UnwrittenContent:
    """Fingerprinted bytes whose item waits in the open batch; filled in when written."""

    signals: MediaSignals
    findings: list[Finding]
    item_id: int | None = None
    matched: bool = False


class ContentDedup:
    """Which fetched files need no fingerprinting, by the SHA-256 of their bytes.

    A fetched file is a duplicate when an earlier copy of the same bytes was fingerprinted
    and matched nothing, and no reference was added since (a newer reference was never
    searched for in it). A matched copy is never a duplicate: every location of matched
    bytes gets its own item, takedown and evidence. The layers, cheapest first:

    1. In flight (`hashing`): the same bytes are being fingerprinted right now; a second
       copy waits for the first (`wait_for_first`) before it asks the other layers.
    2. In the open write batch (`unwritten`): fingerprinted in this run, item not yet
       written. Whether the first copy matched is known only when the batch writes it, so
       the caller decides there, with the first copy's signals (no second hash).
    3. Written in this run (`unmatched`): item id of every written item that matched
       nothing, by SHA-256 (text excluded: a page's text is never deduplicated).
    4. Earlier crawls (`earlier_prefixes`): the first 8 bytes, sorted, of the SHA-256 of
       every item scanned without error since the newest reference, loaded once per run.
       Most fetched files are ruled out here (8 bytes per earlier item) without a store
       query, which per fetched file was a crawl's dearest bookkeeping (see
       `ansim bench crawl`).
    5. The store: a file whose prefix is there is looked up (an error-free item with the
       same SHA-256, scanned since the newest reference, with no match); the newest such
       item is the duplicate's item.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hashing: dict[str, asyncio.Future[None]] = {}
        self.unwritten: dict[str, UnwrittenContent] = {}
        self.unmatched: dict[str, int] = {}
        self.earlier_prefixes = np.zeros(0, np.uint64)
        self.newest_reference_at: datetime | None = None

    def load_earlier(self) -> None:
        """Layers 4 and 5 from the store, once at the start of a run. Outside the write
        lock: it reads a row per earlier item (millions in a long-used store)."""
        with self.store.read_session() as session:
            self.newest_reference_at = session.execute(
                select(func.max(Reference.added_at))
            ).scalar()
            self.earlier_prefixes = content_prefixes(session, self.newest_reference_at)

    async def wait_for_first(self, sha256: str) -> None:
        """Layer 1: return once no copy of these bytes is being fingerprinted."""
        first = self.hashing.get(sha256)
        if first is not None:
            await asyncio.shield(first)

    @contextmanager
    def fingerprinting(self, sha256: str) -> Iterator[None]:
        """Layer 1: these bytes are being fingerprinted while the block runs."""
        done = self.hashing[sha256] = asyncio.get_running_loop().create_future()
        try:
            yield
        finally:
            done.set_result(None)
            self.hashing.pop(sha256, None)

    def in_batch(self, sha256: str) -> UnwrittenContent | None:
        """Layer 2: the first copy's content when it waits in the open batch."""
        return self.unwritten.get(sha256)

    def fingerprinted(self, content: UnwrittenContent) -> None:
        """Layer 2: a first copy was fingerprinted; its item is written with the batch."""
        if content.signals.sha256:
            self.unwritten.setdefault(content.signals.sha256, content)

    def batch_written(self) -> None:
        """The open batch was written (or dropped): its contents leave layer 2."""
        self.unwritten.clear()

    def written(self, sha256: str | None, item_id: int, modality: str, matched: bool) -> None:
        """Layer 3: an item of this run was committed."""
        if not matched and sha256 and modality != "text":
            self.unmatched[sha256] = item_id

    def unmatched_item(self, sha256: str | None) -> int | None:
        """Layers 3 to 5: the item of an unmatched earlier copy of these bytes, or None."""
        if sha256 is None:
            return None
        if sha256 in self.unmatched:
            return self.unmatched[sha256]
        if not has_prefix(self.earlier_prefixes, sha256):
            return None  # no earlier item has these bytes: no store query (most media)
        with self.store.read_session() as session:
            query = (
                select(ScannedItem.id)
                .where(ScannedItem.sha256 == sha256, ScannedItem.error.is_(None))
                .where(~select(Match.id).where(Match.item_id == ScannedItem.id).exists())
                .order_by(ScannedItem.id.desc())
                .limit(1)
            )
            if self.newest_reference_at is not None:
                # Older items predate a reference they were never matched against.
                query = query.where(ScannedItem.scanned_at >= self.newest_reference_at)
            return session.execute(query).scalar()


def content_prefixes(session: Session, since: datetime | None) -> np.ndarray:
    """The first 8 bytes (sorted) of the SHA-256 of every item that a fetched file could be
    a duplicate of: scanned without error, and not before `since` (the newest reference)."""
    query = select(ScannedItem.sha256).where(
        ScannedItem.sha256.is_not(None), ScannedItem.error.is_(None)
    )
    if since is not None:
        query = query.where(ScannedItem.scanned_at >= since)
    hexes = session.execute(query).scalars()
    return np.unique(np.fromiter((int(h[:16], 16) for h in hexes), np.uint64))


def has_prefix(prefixes: np.ndarray, sha256: str) -> bool:
    prefix = np.uint64(int(sha256[:16], 16))
    position = int(np.searchsorted(prefixes, prefix))
    return position < len(prefixes) and prefixes[position] == prefix
