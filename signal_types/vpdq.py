"""vPDQ: every sampled frame of a video (`frame,quality,pdq_hex,timestamp`, Meta's file
format), stored as one row per video; its usable frames are also PDQ rows, the bank
entries. A video matches a video when enough frame hits agree on one time offset, so a
10 s clip finds a 20 min reference; in a retro-hunt a reference video also finds crawled
images that are one of its frames."""

from __future__ import annotations

from typing import Any

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.detector.video import VPDQ_SIGNAL as NAME
from ansim.detector.video import VideoHashes
from ansim.detector.video_match import (
    FrameHit,
    FramePair,
    VideoMatchRules,
    VideoSide,
    align,
    align_hits,
    best_per_reference,
    format_time,
)
from ansim.detector.vpdq_format import format_vpdq
from ansim.indexer.pdq_index import FaissPdqIndex, PdqHit
from ansim.signal_types.base import BankReader, Direction, SignalRecord


def video_rules(rules: MatchRules) -> VideoMatchRules:
    return VideoMatchRules(max_distance=rules.pdq_max_distance, min_quality=rules.pdq_min_quality)


class VpdqType:
    name = NAME
    modalities = frozenset({"video"})
    index = None  # searched through the PDQ bank, where its usable frames are

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """Every hashed frame, for a video with at least one usable frame (one without is
        matched by its soundtrack alone)."""
        if media.usable_frames(media.video):
            signals.extra[self.name] = media.video

    def values(self, signals: MediaSignals) -> list[VideoHashes]:
        hashes = signals.extra.get(self.name)
        return [hashes] if isinstance(hashes, VideoHashes) else []

    def records(self, hashes: VideoHashes) -> list[SignalRecord]:
        return [
            SignalRecord(
                kind=self.name,
                frame=len(hashes.frames),
                timestamp=hashes.duration_s,
                blob=format_vpdq(hashes.frames).encode("ascii"),
            )
        ]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        if signals.modality != "video":
            return []
        for hashes in self.values(signals):
            if bank.direction is Direction.SCAN:
                return _item_against_references(hashes, bank, video_rules(rules))
            return _reference_against_history(hashes, bank, video_rules(rules))
        return []


def frame_votes(hexes: list[str], bank: BankReader, vrules: VideoMatchRules) -> list[list[PdqHit]]:
    """Every bank entry within the vote distance of each frame hash, as one search at
    that distance would find them, in two steps. A radius search costs more the wider
    it is (at 10M entries ~20 ms a hash at 56 bits against ~0.25 ms at 31), and a video
    owner can only match with at least one frame within `max_distance` (the rules'
    `min_close_frames`): so the frames are searched at `max_distance`, and the owners
    found (their PDQ entries read from the bank) are compared with every frame at the
    vote distance. Owners with no frame that close could not have matched anyway."""
    index = bank.index("pdq")
    if vrules.min_close_frames < 1 or vrules.max_distance >= vrules.vote_distance:
        return index.search(hexes, vrules.vote_distance)
    close = index.search(hexes, vrules.max_distance)
    owners = {
        owner for owner, _ in bank.video_frames_of(h.entry_id for hs in close for h in hs).values()
    }
    entries = bank.pdq_entries_of(owners)
    if not entries:
        return close
    owners_frames = FaissPdqIndex()
    owners_frames.add([entry_id for entry_id, _ in entries], [value for _, value in entries])
    found: list[list[PdqHit]] = []
    for near, first in zip(owners_frames.search(hexes, vrules.vote_distance), close, strict=True):
        votes = {h.entry_id: h.distance for h in near}
        # Hits on entries of other owners (images) are kept as the first step found them.
        votes.update({h.entry_id: h.distance for h in first})
        found.append(sorted(PdqHit(d, e) for e, d in votes.items()))
    return found


def _item_against_references(
    hashes: VideoHashes, bank: BankReader, vrules: VideoMatchRules
) -> list[Decision]:
    """Reference videos that a scanned video copies, by time-aligned frame hits (straight,
    and mirrored when every usable frame has a mirror hash)."""
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
    alignments = []
    for mirrored, hexes in orientations:
        found = frame_votes(hexes, bank, vrules)
        frames_of = bank.video_frames_of(h.entry_id for hs in found for h in hs)
        if not frames_of:
            continue
        hits: list[list[FrameHit]] = [[] for _ in hashes.frames]
        for row, frame_hits in zip(rows, found, strict=True):
            hits[row] = [
                FrameHit(*frames_of[h.entry_id], h.distance)
                for h in frame_hits
                if h.entry_id in frames_of
            ]
        sides = bank.video_sides(ref for ref, _ in frames_of.values())
        alignments += align_hits(hashes.frames, usable, hits, query_side, sides, vrules, mirrored)
    return [
        Decision(
            owner_id=int(a.reference),
            signal=NAME,
            distance=a.mean_distance,
            score=1.0 - a.mean_distance / 256.0,
            explanation=a.explanation(),
        )
        for a in best_per_reference(alignments)
        if a.matched
    ]


def _reference_against_history(
    hashes: VideoHashes, bank: BankReader, vrules: VideoMatchRules
) -> list[Decision]:
    """Crawled videos that copy a new video reference, and crawled images that are one of
    its frames. The reference's usable frames (and their centred crops) are searched in the
    history's PDQ index; a crawled video's hits are aligned in time with the crawled video
    as the query, so the explanation reads as it does for a crawl."""
    frames = hashes.usable(vrules.min_quality) + hashes.usable_variants(vrules.min_quality)
    if not frames:
        return []
    found = frame_votes([f.pdq for f in frames], bank, vrules)
    frame_of_entry = bank.video_frames_of(h.entry_id for hits in found for h in hits)
    item_sides = bank.video_sides({item for item, _ in frame_of_entry.values()})
    pairs: dict[int, list[FramePair]] = {}
    best_still: dict[int, tuple[int, float]] = {}  # crawled image -> (distance, frame time)
    for frame, hits in zip(frames, found, strict=True):
        for hit in hits:
            if hit.entry_id not in frame_of_entry:
                continue
            item_id, item_time = frame_of_entry[hit.entry_id]
            if item_id in item_sides:
                pairs.setdefault(item_id, []).append(
                    FramePair(item_time, frame.timestamp, hit.distance)
                )
            elif hit.distance <= vrules.max_distance:
                seen = (hit.distance, frame.timestamp)
                best_still[item_id] = min(best_still.get(item_id, seen), seen)
    decisions = [
        Decision(
            item_id,
            "pdq",
            float(distance),
            1.0 - distance / 256.0,
            f"crawled image = the frame at {format_time(time)} of the reference video "
            f"(PDQ distance {distance}/256)",
        )
        for item_id, (distance, time) in best_still.items()
    ]
    reference_side = VideoSide.of(hashes.frames, [not flat for flat in hashes.uniform])
    for item_id, item_pairs in pairs.items():
        alignment = align(item_id, item_pairs, item_sides[item_id], reference_side, vrules)
        if alignment is not None and alignment.matched:
            decisions.append(
                Decision(
                    item_id,
                    NAME,
                    alignment.mean_distance,
                    1.0 - alignment.mean_distance / 256.0,
                    f"already crawled: {alignment.explanation()}",
                )
            )
    return decisions
