"""The signals a file yields, as plain data that every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FrameHash:
    """One PDQ hash of an image or of a video frame (`timestamp` in seconds, 0 for images)."""

    pdq: str
    quality: int
    frame: int = 0
    timestamp: float = 0.0


@dataclass
class MediaSignals:
    """Everything the detector extracted from one file.

    `extra` holds modality-specific signals (audio landmarks, text shingles, descriptors)
    under the signal name that the matching index knows.
    """

    modality: str
    sha256: str
    md5: str
    size: int
    mime: str
    pdq: list[FrameHash] = field(default_factory=list)
    # An image's 8 rotations/mirrors (original first), tried at query time.
    pdq_dihedral: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON `signals` object of `ansim hash`."""
        out: dict[str, Any] = {"sha256": self.sha256, "md5": self.md5}
        if self.modality == "image" and self.pdq:
            out["pdq"] = self.pdq[0].pdq
            out["pdq_quality"] = self.pdq[0].quality
        for name, value in self.extra.items():
            summarize = getattr(value, "summary", None)
            out[name] = summarize() if callable(summarize) else value
        return out
