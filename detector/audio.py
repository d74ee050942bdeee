"""Audio hasher: an audio file (or a video's soundtrack) in, its landmark fingerprint out.

Decoding (`detector.audio_decode`) streams mono chunks at one fixed rate; peak picking
(`detector.audio_peaks`) runs on the stream; the fingerprint keeps the peaks, from which
`detector.audio_landmarks` derives the hashes the index stores. Peaks rather than hashes
are what the store keeps (`AudioFingerprint.to_blob`): they are smaller, and a change of
hashing scheme only needs an index rebuild, not the media.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ansim.detector.audio_decode import TARGET_RATE, DecodeOptions, DecodeReport, decode_mono
from ansim.detector.audio_landmarks import Landmarks, LandmarkScheme, reference_landmarks
from ansim.detector.audio_peaks import (
    FRAMES_PER_SECOND,
    PITCH_STEPS_PER_SEMITONE,
    PeakOptions,
    PeakStream,
)
from ansim.detector.errors import LowQuality, MediaError

SIGNAL_NAME = "audio"
BLOB_MAGIC = b"ANSA"
BLOB_VERSION = 1
# Pitch is stored in 1/PITCH_SCALE of a pitch step (uint16 covers the whole band).
PITCH_SCALE = 64


@dataclass(frozen=True)
class AudioOptions:
    decode: DecodeOptions = DecodeOptions()
    peaks: PeakOptions = PeakOptions()
    scheme: LandmarkScheme = LandmarkScheme()
    # Shorter input cannot hold enough landmarks to tell one recording from another.
    min_seconds: float = 1.0
    # Fewer landmarks than this: silence, or near-empty audio.
    min_landmarks: int = 20
    # Peaks on fewer distinct semitones than this: a steady tone, hum or drone.
    min_distinct_pitches: int = 6


@dataclass
class AudioFingerprint:
    """Spectral peaks of one recording: frame numbers and pitch steps, sorted by frame."""

    frames: np.ndarray  # uint32, at FRAMES_PER_SECOND
    pitches: np.ndarray  # float32, pitch steps above the band's lowest frequency
    duration: float  # seconds of audio fingerprinted
    landmark_count: int = 0
    decoder: str = ""
    truncated_at: float | None = None
    warnings: list[str] = field(default_factory=list)

    def landmarks(self, scheme: LandmarkScheme = LandmarkScheme()) -> Landmarks:
        return reference_landmarks(self.frames, self.pitches, scheme)

    def distinct_pitches(self) -> int:
        """How many different semitones the peaks sit on."""
        return len(np.unique(np.floor(self.pitches / PITCH_STEPS_PER_SEMITONE)))

    def summary(self) -> dict[str, Any]:
        """What `ansim hash --json` prints under `signals.audio`."""
        out: dict[str, Any] = {
            "landmarks": self.landmark_count,
            "peaks": int(len(self.frames)),
            "duration_s": round(self.duration, 3),
        }
        if self.truncated_at is not None:
            out["truncated_at_s"] = self.truncated_at
        return out

    def to_blob(self) -> bytes:
        """Compact storage for the store's `signal.blob`: a header, then the peaks."""
        header = struct.pack(
            "<4sHIdd", BLOB_MAGIC, BLOB_VERSION, len(self.frames), self.duration, FRAMES_PER_SECOND
        )
        pitches = np.clip(np.rint(self.pitches * PITCH_SCALE), 0, 65535).astype("<u2")
        return header + self.frames.astype("<u4").tobytes() + pitches.tobytes()

    @classmethod
    def from_blob(cls, blob: bytes) -> AudioFingerprint:
        header_size = struct.calcsize("<4sHIdd")
        if len(blob) < header_size:
            raise ValueError("audio fingerprint blob is truncated")
        magic, version, count, duration, rate = struct.unpack("<4sHIdd", blob[:header_size])
        if magic != BLOB_MAGIC or version != BLOB_VERSION:
            raise ValueError("not an audio fingerprint blob of a known version")
        if rate != FRAMES_PER_SECOND:
            raise ValueError(f"audio fingerprint frame rate {rate} differs from this build's")
        if len(blob) != header_size + 6 * count:
            raise ValueError("audio fingerprint blob has the wrong length")
        frames = np.frombuffer(blob, "<u4", count, header_size).astype(np.uint32)
        pitches = np.frombuffer(blob, "<u2", count, header_size + 4 * count)
        fingerprint = cls(frames, pitches.astype(np.float32) / PITCH_SCALE, duration)
        fingerprint.landmark_count = len(fingerprint.landmarks().hashes)
        return fingerprint


def fingerprint_samples(
    samples: np.ndarray, options: AudioOptions = AudioOptions()
) -> AudioFingerprint:
    """Fingerprint mono float32 samples already at TARGET_RATE (tests, benchmarks)."""
    stream = PeakStream(options.peaks)
    stream.feed(np.asarray(samples, dtype=np.float32))
    frames, pitches = stream.finish()
    fingerprint = AudioFingerprint(frames, pitches, stream.total_samples / TARGET_RATE)
    fingerprint.landmark_count = len(fingerprint.landmarks(options.scheme).hashes)
    return fingerprint


def fingerprint_file(
    path: Path, mime: str = "", options: AudioOptions = AudioOptions()
) -> AudioFingerprint:
    """Decode and fingerprint a file's (first) audio track. Raises MediaError on bad input."""
    report = DecodeReport()
    stream = PeakStream(options.peaks)
    for chunk in decode_mono(path, mime, options.decode, report):
        stream.feed(chunk)
    duration = stream.total_samples / TARGET_RATE
    if stream.total_samples == 0:
        raise MediaError("the audio track holds no samples (zero length)")
    if duration < options.min_seconds:
        raise MediaError(
            f"audio is {duration:.2f} s long; at least {options.min_seconds:g} s is needed "
            "to fingerprint it"
        )
    frames, pitches = stream.finish()
    fingerprint = AudioFingerprint(
        frames,
        pitches,
        duration,
        decoder=report.decoder,
        truncated_at=report.truncated_at,
        warnings=list(report.warnings),
    )
    fingerprint.landmark_count = len(fingerprint.landmarks(options.scheme).hashes)
    if report.truncated_at is not None:
        fingerprint.warnings.append(
            f"audio is longer than {report.truncated_at:,.0f} s; only that much was fingerprinted"
        )
    if fingerprint.landmark_count < options.min_landmarks:
        raise LowQuality(
            f"audio yields only {fingerprint.landmark_count} landmarks in {duration:.1f} s: "
            "silence or near-silence, too generic to match safely"
        )
    if fingerprint.distinct_pitches() < options.min_distinct_pitches:
        raise LowQuality(
            f"audio's spectral peaks sit on only {fingerprint.distinct_pitches()} distinct "
            "pitches: a steady tone, hum or drone, too generic to match safely"
        )
    return fingerprint
