"""A file being hashed: its real type, sniffed from the bytes, and what its modality
decodes to (an image's pixels, a video's sampled frame hashes, a text's normalized
signals, an audio track's landmarks), each decoded once, on first use.

The signal types (`ansim.signal_types`) each compute their values from a `Media`;
`ansim.signal_types.hashing.hash_file` is the entry point that runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from ansim.detector.audio import AudioFingerprint, AudioOptions, fingerprint_file
from ansim.detector.errors import LowQuality, MediaError, UnsupportedMedia
from ansim.detector.image import ImageOptions, load_rgb
from ansim.detector.pdq import DEFAULT_MIN_QUALITY
from ansim.detector.sniff import IMAGE_MIMES, Sniffed
from ansim.detector.text import TextOptions, TextSignals, text_file_signals
from ansim.detector.video import VideoHashes, VideoOptions, hash_video

MODALITIES = ("image", "video", "audio", "text")


@dataclass(frozen=True)
class HashOptions:
    """Knobs for every modality and signal type; each reads its own fields."""

    image: ImageOptions = ImageOptions()
    text: TextOptions = TextOptions()
    video: VideoOptions = VideoOptions()
    audio: AudioOptions = AudioOptions()
    min_pdq_quality: int = DEFAULT_MIN_QUALITY
    max_file_bytes: int = 4 << 30
    extra: dict[str, Any] = field(default_factory=dict)


def modality_of(sniffed: Sniffed) -> str:
    """The modality whose decoder takes this content; UnsupportedMedia when none does."""
    if sniffed.mime in IMAGE_MIMES:
        return "image"
    if sniffed.modality in ("text", "video", "audio"):
        return sniffed.modality
    raise UnsupportedMedia(f"unsupported content ({sniffed.mime}), whatever the file name says")


class Media:
    """One file's decoded content. Decoders raise MediaError (a readable message) on bad
    input; what is worth knowing but not fatal goes to `warnings`."""

    def __init__(self, path: Path, sniffed: Sniffed, options: HashOptions) -> None:
        self.path = path
        self.sniffed = sniffed
        self.options = options
        self.modality = modality_of(sniffed)
        self.warnings: list[str] = []

    @cached_property
    def rgb(self) -> np.ndarray:
        return load_rgb(self.path, self.options.image)

    @cached_property
    def text(self) -> TextSignals:
        size = self.path.stat().st_size
        limit = self.options.text.max_bytes
        if size > limit:
            raise MediaError(f"text file is {size:,} bytes, over the text limit of {limit:,}")
        signals, decoded = text_file_signals(self.path.read_bytes(), self.options.text)
        self.warnings.extend(decoded.warnings)
        if decoded.encoding not in ("utf-8", "utf-8-sig", "ascii"):
            self.warnings.append(f"decoded as {decoded.encoding}")
        return signals

    @cached_property
    def video(self) -> VideoHashes:
        """vPDQ: PDQ per sampled frame. A video whose frames are all too flat to match is
        still a copy to find by its sound: it is kept, with a warning, for its soundtrack."""
        hashes = hash_video(self.path, self.options.video)
        self.warnings.extend(hashes.warnings)
        if not self.usable_frames(hashes):
            self.warnings.append(f"{self.frames_refused(hashes)}; soundtrack only")
        return hashes

    def usable_frames(self, hashes: VideoHashes) -> list:
        return hashes.usable(self.options.min_pdq_quality)

    def frames_refused(self, hashes: VideoHashes) -> str:
        return (
            f"none of the {len(hashes.frames)} hashed frames is detailed enough to match "
            f"(PDQ quality >= {self.options.min_pdq_quality}, not one flat colour)"
        )

    @cached_property
    def audio(self) -> AudioFingerprint:
        """The (first) audio track: of an audio file, or of a video (its soundtrack)."""
        fingerprint = fingerprint_file(self.path, self.sniffed.mime, self.options.audio)
        self.warnings.extend(fingerprint.warnings)
        return fingerprint

    @cached_property
    def soundtrack(self) -> AudioFingerprint | None:
        """A video's soundtrack, or None (with a warning) when it has none usable: every
        video is fingerprinted as audio too, so a reported video finds an audio-only
        repost and the reverse."""
        try:
            return self.audio
        except MediaError as exc:
            self.warnings.append(f"soundtrack not fingerprinted: {exc}")
            return None

    def refuse_if_unmatchable(self) -> None:
        """A video with neither a usable frame nor a soundtrack has nothing to match on."""
        if self.modality != "video" or self.usable_frames(self.video):
            return
        if self.soundtrack is None:
            raise LowQuality(self.frames_refused(self.video))
