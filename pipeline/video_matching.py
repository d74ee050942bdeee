"""Video in the match pipeline: a video's frames against the PDQ bank, aligned in time.

Reference videos keep two kinds of signal rows: one `pdq` row per usable frame (the bank
entries, with the frame's timestamp, so a thumbnail finds its frame) and one `vpdq` row
holding every hashed frame as vPDQ text (for export and for the reference's sampling
step). A scanned video's usable frames, straight and mirrored, are searched in the bank;
the hits on video references are aligned per reference by `detector.video_match`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.signals import MediaSignals
from ansim.detector.video import VideoHashes
from ansim.detector.video_match import (
    FrameHit,
    VideoMatchRules,
    VideoSide,
    align_hits,
    best_per_reference,
    format_time,
    sampling_step,
    usable_duration,
)
from ansim.detector.vpdq_format import parse_vpdq
from ansim.pipeline.banks import Banks
from ansim.store.signal_rows import VPDQ_KIND
from ansim.store.tables import Reference, Signal
from sqlalchemy import select
from sqlalchemy.orm import Session

# SQLite's bound-parameter limit is 999 in old builds: query ids in chunks below it.
ID_CHUNK = 900


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), ID_CHUNK):
        yield ordered[start : start + ID_CHUNK]


def video_frames_of_entries(session: Session, entry_ids: Iterable[int]) -> dict[int, tuple]:
    """signal id -> (reference id, frame timestamp) for frames of consented video references."""
    found: dict[int, tuple] = {}
    for chunk in _chunks(entry_ids):
        rows = session.execute(
            select(Signal.id, Signal.reference_id, Signal.timestamp)
            .join(Reference, Signal.reference_id == Reference.id)
            .where(
                Signal.id.in_(chunk),
                Reference.consent == "given",
                Reference.modality == "video",
            )
        )
        found.update({sid: (rid, stamp or 0.0) for sid, rid, stamp in rows})
    return found


def video_sides(
    session: Session, owner_ids: Iterable[int], owner_column: Any = Signal.reference_id
) -> dict[int, VideoSide]:
    """Sampling step and usable duration of each video among the owners (reference videos,
    or crawled videos with `Signal.item_id`), from the store; owners without a `vpdq` row
    (images) get none.

    Usable frames are those with a `pdq` row (a frame may have several: its centred crops).
    """
    sides: dict[int, VideoSide] = {}
    for chunk in _chunks(owner_ids):
        usable_times: dict[int, set[float]] = {}
        for owner_id, stamp in session.execute(
            select(owner_column, Signal.timestamp)
            .where(owner_column.in_(chunk), Signal.kind == "pdq")
            .distinct()
        ):
            usable_times.setdefault(owner_id, set()).add(round(stamp or 0.0, 3))
        blobs = session.execute(
            select(owner_column, Signal.blob).where(
                owner_column.in_(chunk), Signal.kind == VPDQ_KIND
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


def video_rules(rules: MatchRules) -> VideoMatchRules:
    return VideoMatchRules(max_distance=rules.pdq_max_distance, min_quality=rules.pdq_min_quality)


def match_video(
    session: Session, banks: Banks, signals: MediaSignals, rules: MatchRules
) -> list[Decision]:
    """Reference videos that a scanned video copies, by time-aligned frame hits."""
    hashes = signals.extra.get(VPDQ_KIND)
    if signals.modality != "video" or not isinstance(hashes, VideoHashes):
        return []
    vrules = video_rules(rules)
    usable = [
        not flat and frame.quality >= vrules.min_quality
        for frame, flat in zip(hashes.frames, hashes.uniform, strict=True)
    ]
    rows = [i for i, ok in enumerate(usable) if ok]
    if not rows:
        return []
    query_side = VideoSide.of(hashes.frames, usable, vrules.min_quality)
    orientations = [(False, [hashes.frames[i].pdq for i in rows])]
    if all(hashes.mirrored[i] for i in rows):
        orientations.append((True, [hashes.mirrored[i] for i in rows]))
    index = banks.index(session, "pdq")
    alignments = []
    for mirrored, hexes in orientations:
        found = index.search(hexes, vrules.vote_distance)
        frames_of = video_frames_of_entries(session, (h.entry_id for hs in found for h in hs))
        if not frames_of:
            continue
        hits: list[list[FrameHit]] = [[] for _ in hashes.frames]
        for row, frame_hits in zip(rows, found, strict=True):
            hits[row] = [
                FrameHit(*frames_of[h.entry_id], h.distance)
                for h in frame_hits
                if h.entry_id in frames_of
            ]
        sides = video_sides(session, (ref for ref, _ in frames_of.values()))
        alignments += align_hits(hashes.frames, usable, hits, query_side, sides, vrules, mirrored)
    return [
        Decision(
            owner_id=int(a.reference),
            signal=VPDQ_KIND,
            distance=a.mean_distance,
            score=1.0 - a.mean_distance / 256.0,
            explanation=a.explanation(),
        )
        for a in best_per_reference(alignments)
        if a.matched
    ]


def with_frame_time(session: Session, decision: Decision, entry_id: int) -> Decision:
    """An image matched a frame of a reference video: say which frame, by its time."""
    row = session.execute(
        select(Signal.timestamp, Signal.frame, Reference.modality)
        .join(Reference, Signal.reference_id == Reference.id)
        .where(Signal.id == entry_id)
    ).first()
    if row is None or row.modality != "video":
        return decision
    where = f"; frame at {format_time(row.timestamp or 0.0)} of the reference video"
    return dataclasses.replace(
        decision, explanation=f"{decision.explanation}{where} (frame {row.frame})"
    )
