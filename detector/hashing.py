"""The detector's one entry point: a file in, its signals out.

`hash_file` sniffs the real type from the bytes, computes the file digests and hands the
file to the hasher of its modality. A modality is added by writing a `MediaHasher` and
listing it in `HASHERS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ansim.detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from ansim.detector.audio import AudioOptions, fingerprint_file
from ansim.detector.errors import LowQuality, MediaError, UnsupportedMedia
from ansim.detector.filehash import file_digests
from ansim.detector.image import ImageOptions, hash_rgb, load_rgb
from ansim.detector.image_robust import LOCAL_FEATURES_OPTION, ROBUST_OPTION, robust_image_signals
from ansim.detector.pdq import DEFAULT_MIN_QUALITY
from ansim.detector.signals import FrameHash, MediaSignals
from ansim.detector.sniff import IMAGE_MIMES, Sniffed, sniff_file
from ansim.detector.text import TextOptions, text_file_signals
from ansim.detector.video import VideoOptions, hash_video


@dataclass(frozen=True)
class HashOptions:
    """Knobs for every hasher; each modality reads its own fields."""

    image: ImageOptions = ImageOptions()
    text: TextOptions = TextOptions()
    video: VideoOptions = VideoOptions()
    audio: AudioOptions = AudioOptions()
    min_pdq_quality: int = DEFAULT_MIN_QUALITY
    max_file_bytes: int = 4 << 30
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class HasherOutput:
    pdq: list[FrameHash] = field(default_factory=list)
    pdq_dihedral: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class MediaHasher(Protocol):
    modality: str

    def accepts(self, sniffed: Sniffed) -> bool: ...

    def hash(self, path: Path, sniffed: Sniffed, options: HashOptions) -> HasherOutput: ...


class ImageHasher:
    modality = "image"

    def accepts(self, sniffed: Sniffed) -> bool:
        return sniffed.mime in IMAGE_MIMES

    def hash(self, path: Path, sniffed: Sniffed, options: HashOptions) -> HasherOutput:
        rgb = load_rgb(path, options.image)
        hashes = hash_rgb(rgb)
        if hashes.pdq.quality < options.min_pdq_quality:
            raise LowQuality(
                f"image PDQ quality {hashes.pdq.quality} is below {options.min_pdq_quality}: "
                "too flat or featureless to match safely"
            )
        extra = (
            robust_image_signals(rgb, options.extra.get(LOCAL_FEATURES_OPTION, True))
            if options.extra.get(ROBUST_OPTION, True)
            else {}
        )
        return HasherOutput(pdq=[hashes.pdq], pdq_dihedral=hashes.dihedral, extra=extra)


class TextHasher:
    modality = "text"

    def accepts(self, sniffed: Sniffed) -> bool:
        return sniffed.modality == "text"

    def hash(self, path: Path, sniffed: Sniffed, options: HashOptions) -> HasherOutput:
        size = path.stat().st_size
        if size > options.text.max_bytes:
            raise MediaError(
                f"text file is {size:,} bytes, over the text limit of {options.text.max_bytes:,}"
            )
        signals, decoded = text_file_signals(path.read_bytes(), options.text)
        warnings = list(decoded.warnings)
        if decoded.encoding not in ("utf-8", "utf-8-sig", "ascii"):
            warnings.append(f"decoded as {decoded.encoding}")
        return HasherOutput(extra=signals.extra(), warnings=warnings)


class AudioHasher:
    """Audio files: spectral-peak landmarks under `extra["audio"]`."""

    modality = "audio"

    def accepts(self, sniffed: Sniffed) -> bool:
        return sniffed.modality == "audio"

    def hash(self, path: Path, sniffed: Sniffed, options: HashOptions) -> HasherOutput:
        fingerprint = fingerprint_file(path, sniffed.mime, options.audio)
        return HasherOutput(extra={AUDIO_SIGNAL: fingerprint}, warnings=fingerprint.warnings)


class VideoHasher:
    """vPDQ: PDQ per sampled frame. `pdq` gets the frames fit to match on their own (the
    bank, where a thumbnail finds its frame); `extra["vpdq"]` keeps every hashed frame."""

    modality = "video"

    def accepts(self, sniffed: Sniffed) -> bool:
        return sniffed.modality == "video"

    def hash(self, path: Path, sniffed: Sniffed, options: HashOptions) -> HasherOutput:
        hashes = hash_video(path, options.video)
        usable = hashes.usable(options.min_pdq_quality)
        if usable:
            bank = usable + hashes.usable_variants(options.min_pdq_quality)
            return HasherOutput(pdq=bank, extra={"vpdq": hashes}, warnings=list(hashes.warnings))
        frames_refused = (
            f"none of the {len(hashes.frames)} hashed frames is detailed enough to match "
            f"(PDQ quality >= {options.min_pdq_quality}, not one flat colour)"
        )
        # A static or blank picture over real sound is still a copy to find, by its sound.
        output = HasherOutput(warnings=[*hashes.warnings, f"{frames_refused}; soundtrack only"])
        add_soundtrack(path, sniffed, options, output)
        if AUDIO_SIGNAL not in output.extra:
            raise LowQuality(frames_refused)
        return output


def add_soundtrack(
    path: Path, sniffed: Sniffed, options: HashOptions, output: HasherOutput
) -> None:
    """Every video's audio track is fingerprinted as audio too, so a reported video finds
    an audio-only repost and the reverse. A video without usable sound only gets a warning."""
    if sniffed.modality != "video" or AUDIO_SIGNAL in output.extra:
        return
    try:
        fingerprint = fingerprint_file(path, sniffed.mime, options.audio)
    except MediaError as exc:
        output.warnings.append(f"soundtrack not fingerprinted: {exc}")
        return
    output.extra[AUDIO_SIGNAL] = fingerprint
    output.warnings.extend(fingerprint.warnings)


HASHERS: list[MediaHasher] = [ImageHasher(), TextHasher(), VideoHasher(), AudioHasher()]


def hash_file(path: Path, options: HashOptions = HashOptions()) -> MediaSignals:
    """Fingerprint one file. Raises MediaError (with a readable message) on bad input."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise MediaError("not a regular file")
        if size == 0:
            raise MediaError("file is empty (0 bytes)")
        if size > options.max_file_bytes:
            raise MediaError(
                f"file is {size:,} bytes, over the limit of {options.max_file_bytes:,}"
            )
        sniffed = sniff_file(path)
        hasher = next((h for h in HASHERS if h.accepts(sniffed)), None)
        if hasher is None:
            raise UnsupportedMedia(
                f"unsupported content ({sniffed.mime}), whatever the file name says"
            )
        sha256, md5, size = file_digests(path)
        output = hasher.hash(path, sniffed, options)
        add_soundtrack(path, sniffed, options, output)
    except FileNotFoundError as exc:
        raise MediaError("file vanished or does not exist") from exc
    except PermissionError as exc:
        raise MediaError("file is not readable (permission denied)") from exc
    except IsADirectoryError as exc:
        raise MediaError("is a directory") from exc
    return MediaSignals(
        modality=hasher.modality,
        sha256=sha256,
        md5=md5,
        size=size,
        mime=sniffed.mime,
        pdq=output.pdq,
        pdq_dihedral=output.pdq_dihedral,
        extra=output.extra,
        warnings=output.warnings,
    )
