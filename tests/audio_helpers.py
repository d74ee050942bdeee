"""Builders for the audio tests: recordings from shared/data/audio, synthetic negatives,
and files with hostile headers."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

AUDIO_DIR = "audio"
# Indexed in the match tests; the other two are held out as unrelated queries.
INDEXED = [
    "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.hq.ogg",
    "5703-47212-0000.hq.ogg",
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
    "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
    "admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
    "sorohanro_-_solo-trumpet-06.hq.ogg",
    "456440__inspectorj__bird-whistling-robin-single-13.hq.ogg",
]
HELD_OUT = ["3436-172162-0000.hq.ogg", "glacier-bay-humpback.hq.ogg"]


def recording(shared_data: Path, name: str) -> Path:
    path = shared_data / AUDIO_DIR / name
    if not path.is_file():
        pytest.skip(f"shared recording {name} missing")
    return path


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), np.clip(samples, -1, 1), rate, subtype="PCM_16")
    return path


def tone(seconds: float, hz: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def generic_beat(seconds: float, bpm: float = 100.0, rate: int = 22050, seed: int = 3):
    """A plain drum-machine loop: sine-sweep kick, noise snare, hi-hat ticks."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate), dtype=np.float64)
    beat = int(rate * 60 / bpm)
    t = np.arange(int(0.25 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = rng.standard_normal(len(t)) * np.exp(-t * 25) * 0.5
    hat = rng.standard_normal(int(0.03 * rate)) * 0.2
    for k, start in enumerate(range(0, len(out) - len(t), beat)):
        out[start : start + len(t)] += kick if k % 2 == 0 else snare
        half = start + beat // 2
        out[half : half + len(hat)] += hat
    return (out / np.max(np.abs(out)) * 0.8).astype(np.float32), rate


def wav_header(rate: int, channels: int, data_bytes: int, bits: int = 16) -> bytes:
    """A canonical RIFF/WAVE header claiming whatever the test wants."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def write_video(path: Path, samples: np.ndarray, rate: int, seconds: float) -> Path:
    """An MP4 with a plain moving picture and `samples` as its AAC soundtrack."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for i in range(int(seconds * 10)):
            picture = np.full((48, 64, 3), (i * 7) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        size = 1024
        for start in range(0, len(samples), size):
            block = np.ascontiguousarray(samples[start : start + size], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return path
