"""Simulated reposts of audio: the edits reposters make, applied to benign recordings.

Every transform takes mono float32 samples at `rate` and a seeded generator, and returns
(samples, rate) ready to write to a file; re-encoding transforms return encoded bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import av
import librosa
import numpy as np
import soundfile
import soxr
from scipy.signal import butter, sosfilt

Transform = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]


def clean(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return x, rate


def white_noise(snr_db: float) -> Transform:
    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        power = float(np.mean(x.astype(np.float64) ** 2)) or 1e-12
        noise = rng.standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))
        return _fit((x + noise).astype(np.float32)), rate

    return apply


def speed(factor: float) -> Transform:
    """Play faster (factor > 1) or slower: time and pitch change together (resampling)."""

    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return soxr.resample(x, rate * factor, rate).astype(np.float32), rate

    return apply


def tempo(factor: float) -> Transform:
    """Faster by `factor` with the pitch kept (phase vocoder)."""

    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return librosa.effects.time_stretch(x, rate=factor).astype(np.float32), rate

    return apply


def pitch(semitones: float) -> Transform:
    """Shift pitch with the tempo kept."""

    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        shifted = librosa.effects.pitch_shift(x, sr=rate, n_steps=semitones)
        return shifted.astype(np.float32), rate

    return apply


def phone(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A narrow-band phone line: 300-3400 Hz, 8 kHz, G.711 mu-law 8-bit companding."""
    band = sosfilt(butter(6, [300, 3400], btype="bandpass", fs=rate, output="sos"), x)
    narrow = soxr.resample(band, rate, 8000)
    mu = 255.0
    peak = float(np.max(np.abs(narrow))) or 1.0
    y = np.clip(narrow / peak, -1, 1)
    companded = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    quantized = np.round(companded * 127) / 127
    expanded = np.sign(quantized) * ((1 + mu) ** np.abs(quantized) - 1) / mu
    return (expanded * peak).astype(np.float32), 8000


def clipping(gain_db: float) -> Transform:
    """Turned up until it clips hard."""

    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        peak = float(np.max(np.abs(x))) or 1.0
        return np.clip(x / peak * 10 ** (gain_db / 20), -1, 1).astype(np.float32), rate

    return apply


def mixed_with(other: np.ndarray, other_rate: int, level_db: float) -> Transform:
    """Another recording laid under the clip at `level_db` relative to it."""

    def apply(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        bed = soxr.resample(other, other_rate, rate) if other_rate != rate else other
        if len(bed) < len(x):
            bed = np.tile(bed, int(np.ceil(len(x) / max(len(bed), 1))))
        start = int(rng.integers(0, len(bed) - len(x) + 1))
        bed = bed[start : start + len(x)]
        gain = np.sqrt(
            (np.mean(x.astype(np.float64) ** 2) + 1e-12)
            / (np.mean(bed.astype(np.float64) ** 2) + 1e-12)
        ) * 10 ** (level_db / 20)
        return _fit((x + gain * bed).astype(np.float32)), rate

    return apply


def _fit(x: np.ndarray) -> np.ndarray:
    """Scale down only if the sum would clip (a real mix would be levelled, not clipped)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x / peak if peak > 1.0 else x


def encode_mp3(x: np.ndarray, rate: int, bitrate: int = 64_000) -> bytes:
    """MP3 bytes (LAME through PyAV) of mono samples."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bitrate
        frame_size = 1152
        pts = 0
        for start in range(0, len(x), frame_size):
            block = np.ascontiguousarray(x[start : start + frame_size], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            pts += len(block)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def wav_bytes(x: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(x, -1, 1), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
