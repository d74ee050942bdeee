"""Audio landmarks (pairs of spectral peaks hashed with their time delta), for audio files
and every video's soundtrack: a match is enough landmark hits agreeing on one time offset,
verified peak by peak, under pitch and speed shifts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansim.detector.audio import SIGNAL_NAME as NAME
from ansim.detector.audio import AudioFingerprint
from ansim.detector.audio_landmarks import query_variants
from ansim.detector.audio_match import matching_alignments
from ansim.detector.decision import Decision, MatchRules, audio_decision
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.indexer.audio_index import (
    AudioEntry,
    AudioIndex,
    BruteForceAudioIndex,
    InvertedAudioIndex,
    QueryLandmarks,
)
from ansim.signal_types.base import BankReader, Direction, IndexSpec, SignalRecord, StoredSignal


def _entry(fingerprint: AudioFingerprint) -> AudioEntry:
    landmarks = fingerprint.landmarks()
    return AudioEntry(landmarks.hashes, landmarks.times, fingerprint.frames, fingerprint.pitches)


def _add_rows(index: AudioIndex, rows: Sequence[StoredSignal]) -> None:
    for row in rows:
        index.add(row.id, _entry(AudioFingerprint.from_blob(row.blob or b"")))


def _query(fingerprint: AudioFingerprint) -> list[QueryLandmarks]:
    variants = query_variants(fingerprint.frames, fingerprint.pitches)
    return [QueryLandmarks(marks.hashes, marks.times) for _, marks in variants]


def _probe(index: AudioIndex, fingerprint: AudioFingerprint) -> list[tuple[int, float]]:
    votes = index.vote(_query(fingerprint))
    return sorted((vote.entry_id, float(vote.votes)) for vote in votes)


class AudioType:
    name = NAME
    modalities = frozenset({"audio", "video"})
    index = IndexSpec(
        create=InvertedAudioIndex,
        load=InvertedAudioIndex.load,
        add_rows=_add_rows,
        brute_force=BruteForceAudioIndex,
        probe=_probe,
    )

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """An audio file's track (errors are the file's), or a video's soundtrack (its
        absence is only a warning)."""
        fingerprint = media.soundtrack if media.modality == "video" else media.audio
        if fingerprint is not None:
            signals.extra[self.name] = fingerprint

    def values(self, signals: MediaSignals) -> list[AudioFingerprint]:
        fingerprint = signals.extra.get(self.name)
        return [fingerprint] if fingerprint is not None else []

    def records(self, fingerprint: AudioFingerprint) -> list[SignalRecord]:
        """One row per audio track: its peaks in `blob`, its length in `timestamp`."""
        return [
            SignalRecord(
                kind=self.name,
                value=f"{fingerprint.landmark_count} landmarks",
                timestamp=fingerprint.duration,
                blob=fingerprint.to_blob(),
            )
        ]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        """Landmark votes, then peak-level verification. In a retro-hunt the owners are
        crawled items and the alignment is turned round (the reference was the query)."""
        best: dict[int, Decision] = {}
        for fingerprint in self.values(signals):
            index = bank.index(self.name)
            variants = query_variants(fingerprint.frames, fingerprint.pitches)
            votes = index.vote([QueryLandmarks(m.hashes, m.times) for _, m in variants])
            owners = bank.owners_of({vote.entry_id for vote in votes})
            alignments = matching_alignments(
                fingerprint.frames,
                fingerprint.pitches,
                [vote for vote in votes if vote.entry_id in owners],
                [variant for variant, _ in variants],
                index.peaks,
                rules.audio,
            )
            for alignment in alignments:
                if bank.direction is Direction.RETRO_HUNT:
                    alignment = alignment.swapped()
                decision = audio_decision(alignment, owners[alignment.entry_id])
                if decision.owner_id not in best or decision.score > best[decision.owner_id].score:
                    best[decision.owner_id] = decision
        return list(best.values())
