"""The store behind a `BankReader`: what matchers may ask about one bank's owners,
answered with SQL in one read-only session. Owners are consented references (the
reference bank) or crawled items (the crawl history)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ansim.detector.local_verify import LocalFeatures
from ansim.detector.video import VPDQ_SIGNAL
from ansim.detector.video_match import VideoSide, sampling_step, usable_duration
from ansim.detector.vpdq_format import parse_vpdq
from ansim.pipeline.banks import Banks
from ansim.signal_types import Direction
from ansim.store.tables import Reference, ScannedItem, Signal
from sqlalchemy import select
from sqlalchemy.orm import Session

# SQLite's bound-parameter limit is 999 in old builds: query ids in chunks below it.
ID_CHUNK = 900


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), ID_CHUNK):
        yield ordered[start : start + ID_CHUNK]


class StoreBankReader:
    def __init__(self, session: Session, banks: Banks) -> None:
        self._session = session
        self._banks = banks
        self.direction = banks.direction

    def index(self, name: str) -> Any:
        return self._banks.index(self._session, name)

    def owners_of(self, entry_ids: set[int], model_id: str | None = None) -> dict[int, int]:
        return self._banks.owners_of(self._session, entry_ids, model_id)

    def local_features_of(self, owner_ids: set[int]) -> dict[int, LocalFeatures]:
        return self._banks.local_features_of(self._session, owner_ids)

    def owners_with_value(self, kind: str, value: str) -> list[int]:
        if self.direction is Direction.RETRO_HUNT:
            if kind != "sha256":
                return []  # crawled items are known by the SHA-256 on their own row
            return list(
                self._session.execute(
                    select(ScannedItem.id).where(
                        ScannedItem.sha256 == value, ScannedItem.error.is_(None)
                    )
                ).scalars()
            )
        return list(
            self._session.execute(
                select(Signal.reference_id)
                .join(Reference, Signal.reference_id == Reference.id)
                .where(Reference.consent == "given", Signal.kind == kind, Signal.value == value)
            ).scalars()
        )

    def video_frames_of(self, entry_ids: Iterable[int]) -> dict[int, tuple[int, float]]:
        found: dict[int, tuple[int, float]] = {}
        for chunk in _chunks(entry_ids):
            if self.direction is Direction.RETRO_HUNT:
                query = select(Signal.id, Signal.item_id, Signal.timestamp).where(
                    Signal.id.in_(chunk), Signal.item_id.is_not(None)
                )
            else:
                query = (
                    select(Signal.id, Signal.reference_id, Signal.timestamp)
                    .join(Reference, Signal.reference_id == Reference.id)
                    .where(
                        Signal.id.in_(chunk),
                        Reference.consent == "given",
                        Reference.modality == "video",
                    )
                )
            found.update(
                {sid: (owner, stamp or 0.0) for sid, owner, stamp in self._session.execute(query)}
            )
        return found

    def video_sides(self, owner_ids: Iterable[int]) -> dict[int, VideoSide]:
        """Usable frames are those with a `pdq` row (a frame may have several: its centred
        crops); owners without a vPDQ row (images) get none."""
        owner_column = self._banks.owner_column
        sides: dict[int, VideoSide] = {}
        for chunk in _chunks(owner_ids):
            usable_times: dict[int, set[float]] = {}
            for owner_id, stamp in self._session.execute(
                select(owner_column, Signal.timestamp)
                .where(owner_column.in_(chunk), Signal.kind == "pdq")
                .distinct()
            ):
                usable_times.setdefault(owner_id, set()).add(round(stamp or 0.0, 3))
            blobs = self._session.execute(
                select(owner_column, Signal.blob).where(
                    owner_column.in_(chunk), Signal.kind == VPDQ_SIGNAL
                )
            )
            for owner_id, blob in blobs:
                frames = parse_vpdq(blob.decode("ascii"), source=f"video {owner_id}")
                times = [f.timestamp for f in frames]
                kept = usable_times.get(owner_id, set())
                step = sampling_step(times)
                usable = [round(t, 3) in kept for t in times]
                sides[owner_id] = VideoSide(step, usable_duration(times, usable, step))
        return sides

    def pdq_entries_of(self, owner_ids: Iterable[int]) -> list[tuple[int, str]]:
        owner_column = self._banks.owner_column
        entries: list[tuple[int, str]] = []
        for chunk in _chunks(owner_ids):
            entries += self._session.execute(
                select(Signal.id, Signal.value).where(
                    owner_column.in_(chunk), Signal.kind == "pdq", Signal.value.is_not(None)
                )
            ).tuples()
        return entries

    def reference_frame_of(self, entry_id: int) -> tuple[float, int] | None:
        if self.direction is not Direction.SCAN:
            return None
        row = self._session.execute(
            select(Signal.timestamp, Signal.frame, Reference.modality)
            .join(Reference, Signal.reference_id == Reference.id)
            .where(Signal.id == entry_id)
        ).first()
        if row is None or row.modality != "video":
            return None
        return row.timestamp or 0.0, row.frame
