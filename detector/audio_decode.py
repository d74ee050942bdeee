"""Audio decoding: any audio file or video soundtrack in, mono float32 at one fixed rate out.

libsndfile (through soundfile) reads WAV, FLAC, Ogg Vorbis/Opus and MP3 directly; everything
else (AAC, M4A, the audio track inside MP4/MKV/WebM, ...) goes through PyAV (FFmpeg). Audio
arrives in chunks of about a minute so a long file never sits whole in memory, and is
resampled once, in a stream, to `TARGET_RATE`.

Hostile input is bounded: absurd sample rates and channel counts are refused, every read is
capped in samples (rate x channels), and decoding stops at `max_seconds`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import soundfile
import soxr
from ansim.detector.errors import MediaError, UnsupportedMedia

TARGET_RATE = 8000
CHUNK_SECONDS = 60.0
# Interleaved samples read per step (about 11 s of 48 kHz stereo); bounds memory whatever
# the channel count claims.
MAX_SAMPLES_PER_READ = 1 << 20

# Content types that libsndfile is tried on first; PyAV handles the rest and any fallback.
SOUNDFILE_MIMES = {
    "audio/x-wav",
    "audio/wav",
    "audio/x-flac",
    "audio/flac",
    "audio/ogg",
    "audio/mpeg",
    "audio/x-aiff",
    "audio/aiff",
}


@dataclass(frozen=True)
class DecodeOptions:
    # Longer input is fingerprinted up to this point and flagged, never decoded forever.
    max_seconds: float = 4 * 3600.0
    min_rate: int = 1000
    max_rate: int = 768_000
    max_channels: int = 64


@dataclass
class DecodeReport:
    """What decoding found out besides the samples."""

    source_rate: int = 0
    source_channels: int = 0
    decoder: str = ""
    truncated_at: float | None = None
    warnings: list[str] = field(default_factory=list)


def decode_mono(
    path: Path,
    mime: str = "",
    options: DecodeOptions = DecodeOptions(),
    report: DecodeReport | None = None,
) -> Iterator[np.ndarray]:
    """Yield mono float32 chunks at TARGET_RATE. Raises MediaError on unreadable input.

    `report`, if given, is filled in as decoding goes (source format, truncation, warnings).
    """
    report = report if report is not None else DecodeReport()
    use_soundfile = mime in SOUNDFILE_MIMES or not mime
    if use_soundfile:
        try:
            handle = soundfile.SoundFile(str(path))
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
            handle = None  # libsndfile cannot open it; FFmpeg may
        if handle is not None:
            with handle:
                yield from _decode_soundfile(handle, options, report)
            return
    yield from _decode_pyav(path, options, report)


def _check_format(rate: int, channels: int, options: DecodeOptions) -> None:
    if not options.min_rate <= rate <= options.max_rate:
        raise MediaError(
            f"audio sample rate {rate:,} Hz is outside {options.min_rate:,}-"
            f"{options.max_rate:,} Hz: corrupt or not real audio"
        )
    if not 1 <= channels <= options.max_channels:
        raise MediaError(
            f"audio has {channels} channels, outside 1-{options.max_channels}: "
            "corrupt or not real audio"
        )


class _Chunker:
    """Resamples a stream of mono blocks once, and regroups it into ~CHUNK_SECONDS chunks."""

    def __init__(self, source_rate: int, options: DecodeOptions, report: DecodeReport):
        self._resampler = (
            soxr.ResampleStream(source_rate, TARGET_RATE, 1, dtype="float32", quality="MQ")
            if source_rate != TARGET_RATE
            else None
        )
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._emitted = 0
        self._limit = int(options.max_seconds * TARGET_RATE)
        self._report = report
        self.full = False

    def push(self, mono: np.ndarray, last: bool = False) -> Iterator[np.ndarray]:
        out = (
            self._resampler.resample_chunk(mono, last=last) if self._resampler is not None else mono
        )
        room = self._limit - self._emitted - self._pending_len
        if len(out) > room:
            out = out[: max(room, 0)]
            self.full = True
            self._report.truncated_at = self._limit / TARGET_RATE
        if len(out):
            self._pending.append(np.asarray(out, dtype=np.float32))
            self._pending_len += len(out)
        flush = self._pending_len >= CHUNK_SECONDS * TARGET_RATE or last or self.full
        if flush and self._pending_len:
            chunk = np.concatenate(self._pending)
            self._pending, self._pending_len = [], 0
            self._emitted += len(chunk)
            yield chunk


def _decode_soundfile(
    handle: soundfile.SoundFile, options: DecodeOptions, report: DecodeReport
) -> Iterator[np.ndarray]:
    rate, channels = int(handle.samplerate), int(handle.channels)
    _check_format(rate, channels, options)
    report.source_rate, report.source_channels, report.decoder = rate, channels, "libsndfile"
    chunker = _Chunker(rate, options, report)
    frames_per_read = max(1024, MAX_SAMPLES_PER_READ // channels)
    while not chunker.full:
        try:
            block = handle.read(frames_per_read, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            if chunker._emitted or chunker._pending_len:
                report.warnings.append(f"audio is truncated or corrupt after a point: {exc}")
                break
            raise MediaError(f"audio stream is corrupt: {exc}") from exc
        if len(block) == 0:
            break
        yield from chunker.push(_downmix(block))
    yield from chunker.push(np.zeros(0, dtype=np.float32), last=True)


def _downmix(block: np.ndarray) -> np.ndarray:
    mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
    # NaN/inf samples (float files can hold them) would poison every spectrum after them.
    return np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)


def _decode_pyav(path: Path, options: DecodeOptions, report: DecodeReport) -> Iterator[np.ndarray]:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise UnsupportedMedia(f"not a readable audio or video file: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise MediaError("the file has no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        channels = int(stream.codec_context.channels or 0)
        _check_format(rate, channels, options)
        report.source_rate, report.source_channels = rate, channels
        report.decoder = f"ffmpeg/{stream.codec_context.name}"
        chunker = _Chunker(rate, options, report)
        blocks: list[np.ndarray] = []
        block_len = 0
        decoded_any = False
        try:
            for frame in container.decode(stream):
                if frame.samples * channels > MAX_SAMPLES_PER_READ:
                    raise MediaError(f"audio frame of {frame.samples:,} samples is absurd")
                mono = _frame_to_mono(frame)
                decoded_any = True
                blocks.append(mono)
                block_len += len(mono)
                # Codec frames are ~20 ms; hand the resampler about a second at a time.
                if block_len >= rate:
                    yield from chunker.push(np.concatenate(blocks))
                    blocks, block_len = [], 0
                    if chunker.full:
                        break
        except av.FFmpegError as exc:
            if not decoded_any:
                raise MediaError(f"audio stream is corrupt: {exc}") from exc
            report.warnings.append(f"audio is truncated or corrupt after a point: {exc}")
        if blocks and not chunker.full:
            yield from chunker.push(np.concatenate(blocks))
        yield from chunker.push(np.zeros(0, dtype=np.float32), last=True)


_INTEGER_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Average the channels of one decoded frame into float32 samples in [-1, 1]."""
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    # Planar frames come as (channels, n), packed ones as (1, n * channels).
    block = samples.T if frame.format.is_planar else samples.reshape(-1, channels)
    if block.dtype == np.uint8:
        block = (block.astype(np.float32) - 128.0) / 128.0
    elif block.dtype in _INTEGER_SCALE:
        block = block.astype(np.float32) / _INTEGER_SCALE[block.dtype]
    return _downmix(block.astype(np.float32, copy=False))
