"""The SHA-256 of a text after normalization: the same post under any spacing, width,
zero-width or look-alike evasion is the same digest."""

from __future__ import annotations

from typing import Any

from ansim.detector.decision import Decision, MatchRules
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.detector.text import NORMALIZED_SHA256_SIGNAL as NAME
from ansim.signal_types.base import BankReader, Direction, SignalRecord


class TextSha256Type:
    name = NAME
    modalities = frozenset({"text"})
    index = None  # an equality lookup in the store

    def hash(self, media: Media, signals: MediaSignals) -> None:
        signals.extra[self.name] = media.text.normalized_sha256

    def values(self, signals: MediaSignals) -> list[str]:
        digest = signals.extra.get(self.name)
        return [digest] if signals.modality == "text" and digest else []

    def records(self, digest: str) -> list[SignalRecord]:
        return [SignalRecord(kind=self.name, value=digest)]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        # A retro-hunt finds the same text through the MinHash scan of every crawled page.
        if bank.direction is not Direction.SCAN:
            return []
        return [
            Decision(owner, NAME, 0.0, 1.0, "same text after normalization")
            for digest in self.values(signals)
            for owner in bank.owners_with_value(self.name, digest)
        ]
