"""PDQ: Meta's 256-bit perceptual hash of an image, and of each usable frame of a video
(those rows are the video's entries in the PDQ bank, so a thumbnail finds its frame).
An image matches within `MatchRules.pdq_max_distance` bits over its 8 dihedral variants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ansim.detector.decision import (
    Decision,
    MatchRules,
    best_pdq_evidence,
    pdq_image_decision,
)
from ansim.detector.errors import LowQuality
from ansim.detector.hashing import Media
from ansim.detector.image import hash_rgb
from ansim.detector.signals import FrameHash, MediaSignals
from ansim.detector.video_match import format_time
from ansim.indexer.layered_pdq_index import HistoryPdqIndex, load_history_pdq
from ansim.indexer.mih_pdq_index import MihPdqIndex
from ansim.indexer.pdq_index import BruteForcePdqIndex, PdqIndex
from ansim.signal_types.base import BankReader, IndexSpec, SignalRecord, StoredSignal
from ansim.signal_types.searches import ImageSearches

# The probe's radius: far enough that the twins are compared on more than exact copies.
PROBE_RADIUS = 64


def _add_rows(index: PdqIndex, rows: Sequence[StoredSignal]) -> None:
    index.add([row.id for row in rows], [row.value or "" for row in rows])


def _probe(index: PdqIndex, frame: FrameHash) -> list[tuple[int, float]]:
    return sorted(
        (hit.entry_id, float(hit.distance)) for hit in index.search([frame.pdq], PROBE_RADIUS)[0]
    )


class PdqType:
    name = "pdq"
    modalities = frozenset({"image", "video"})
    index = IndexSpec(
        create=MihPdqIndex,
        load=MihPdqIndex.load,
        add_rows=_add_rows,
        brute_force=BruteForcePdqIndex,
        probe=_probe,
        history=(HistoryPdqIndex, load_history_pdq),
    )

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """An image's hash and its 8 dihedral variants; a video's usable frames and their
        centred crops (the video's entries in the PDQ bank)."""
        min_quality = media.options.min_pdq_quality
        if media.modality == "video":
            hashes = media.video
            signals.pdq = hashes.usable(min_quality) + hashes.usable_variants(min_quality)
            return
        image = hash_rgb(media.rgb, exact=not media.options.image.fast_decode)
        if image.pdq.quality < min_quality:
            raise LowQuality(
                f"image PDQ quality {image.pdq.quality} is below {min_quality}: "
                "too flat or featureless to match safely"
            )
        signals.pdq = [image.pdq]
        signals.pdq_dihedral = image.dihedral

    def values(self, signals: MediaSignals) -> list[FrameHash]:
        return list(signals.pdq)

    def records(self, frame: FrameHash) -> list[SignalRecord]:
        return [
            SignalRecord(
                kind=self.name,
                value=frame.pdq,
                quality=frame.quality,
                frame=frame.frame,
                timestamp=frame.timestamp,
            )
        ]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: ImageSearches
    ) -> list[Decision]:
        """An image within the PDQ threshold of an owner (video frames match by vPDQ)."""
        within, owners = searches.pdq_search(rules.pdq_max_distance)
        evidence = best_pdq_evidence(within, owners)
        return [
            _with_frame_time(bank, decision, e.entry_id)
            for e in evidence.values()
            if (decision := pdq_image_decision(e, rules)) is not None
        ]


def _with_frame_time(bank: BankReader, decision: Decision, entry_id: int) -> Decision:
    """An image matched a frame of a reference video: say which frame, by its time."""
    frame = bank.reference_frame_of(entry_id)
    if frame is None:
        return decision
    time, number = frame
    where = f"; frame at {format_time(time)} of the reference video (frame {number})"
    return dataclasses.replace(decision, explanation=f"{decision.explanation}{where}")
