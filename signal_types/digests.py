"""File digests (SHA-256, and MD5 because partners' hash lists use it): equal is a match."""

from __future__ import annotations

from typing import Any

from ansim.detector.decision import Decision, MatchRules, exact_decision
from ansim.detector.hashing import Media
from ansim.detector.signals import MediaSignals
from ansim.signal_types.base import BankReader, SignalRecord


class FileDigest:
    modalities = frozenset({"image", "video", "audio", "text"})
    index = None

    def __init__(self, name: str) -> None:
        self.name = name

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """Nothing to add: `hash_file` computes every file's digests."""

    def values(self, signals: MediaSignals) -> list[str]:
        return [getattr(signals, self.name)]

    def records(self, value: str) -> list[SignalRecord]:
        return [SignalRecord(kind=self.name, value=value)]

    def match(
        self, signals: MediaSignals, bank: BankReader, rules: MatchRules, searches: Any
    ) -> list[Decision]:
        owners = bank.owners_with_value(self.name, getattr(signals, self.name))
        return [exact_decision(owner, self.name) for owner in owners]


SHA256 = FileDigest("sha256")
MD5 = FileDigest("md5")
