"""Video hasher: streamed decoding with PyAV, frames sampled by time, PDQ per frame (vPDQ).

Output is Meta's vPDQ signal: one PDQ hash, quality and timestamp per sampled frame. With
`seconds_per_hash=0` and `crop_borders=False` it reproduces vPDQ's own hashes of every frame
(RGB24 at the stored size, PDQ from the RGB buffer); see tests/detector/test_video_vpdq_interop.py.

Why it is fast without losing vPDQ compatibility:
- frame-threaded decoding (FFmpeg's frame and slice threads);
- when sampling sparsely, frames that no other frame references (most B-frames) are not
  decoded at all (`skip_frame=NONREF`): a sample then comes from the next decoded frame,
  at most a couple of frames later, with its own exact timestamp;
- when sampling sparsely, the rest of a group of pictures after a sample is not decoded
  either when a keyframe comes before the next sample is due (`_KeyframeSkip`): at one
  frame a second and keyframes every two seconds, about half the frames are never decoded;
- only sampled frames are read out and hashed: the decoder's luma plane as it is when
  sampling, RGB when hashing every frame (vPDQ's exact mode).

Only one decoded frame is held at a time; a video of any length streams through.
Flat borders are cropped before hashing (see `detector.borders`), and frames that are
mostly one colour (black, title cards) are marked so the match decision ignores them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from ansim.detector.borders import CropBox, crop, smooth_crops, uniform_share
from ansim.detector.errors import MediaError
from ansim.detector.pdq import DEFAULT_MIN_QUALITY, pdq_distance
from ansim.detector.signals import FrameHash

# A decoder that fails on this many packets in a row is given up on.
# The signal name of a video's every hashed frame (vPDQ), in `MediaSignals.extra`.
VPDQ_SIGNAL = "vpdq"
MAX_CONSECUTIVE_DECODE_ERRORS = 50
# Sparse sampling: when at least this many frames pass between samples, non-reference
# frames are skipped (a sample then comes up to a frame or two late: a few bits off, for
# less decoding CPU; see benchmarks/RESULTS.md, "video").
SKIP_NONREF_MIN_FRAMES = 8
# Pixel formats whose first plane is the luma (8 bits), hashed directly when sampling.
LUMA_PLANE_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)
# Packets held back while looking for a keyframe before the next due sample; past this
# (a stream with no keyframes for minutes) they are decoded after all.
MAX_HELD_PACKETS = 4096


# References are hashed at every frame and deduplicated (`VideoOptions.dedup_bits`): a
# query sampled once a second, at any phase or speed, then meets a reference frame within
# a few bits even in a handheld pan, where two frames (1/15 s) apart are often 50-100 bits
# off. References are few; the bank holds 2-30 entries per second of reported video.
REFERENCE_SECONDS_PER_HASH = 0.0
REFERENCE_DEDUP_BITS = 8
# References also hash centred crops of each frame, as (share of height, share of width)
# kept: PDQ does not survive a crop of a tenth, and reposts are often cut down to their
# centre. One-axis crops cover a copy cropped across its letterbox bars (the bars go,
# and only the other axis loses picture).
CropShare = tuple[float, float, float, float]  # top, left, bottom, right: shares of the frame
REFERENCE_CROP_VARIANTS: tuple[CropShare, ...] = (
    (0.05, 0.05, 0.95, 0.95),
    (0.1, 0.1, 0.9, 0.9),
    (0.05, 0.0, 0.95, 1.0),
    (0.0, 0.05, 1.0, 0.95),
)


@dataclass(frozen=True)
class VideoOptions:
    """How a video is sampled and hashed, and the limits that keep bad files harmless."""

    seconds_per_hash: float = 1.0  # 0 hashes every frame
    # Short videos are sampled more densely, so each gets at least this many frames (from
    # the declared duration): a 5 s repost gets 20 looks, not 5. 0 keeps the rate exact.
    min_frames: int = 20
    crop_borders: bool = True
    mirror: bool = True  # also compute each frame's left-right mirror hash (for queries)
    max_hash_side: int = 1920  # larger frames are shrunk (area filter) before hashing; 0: never
    max_frame_pixels: int = 8192 * 4608  # refuse videos with larger frames
    max_duration_s: float = 6 * 3600.0  # refuse longer videos; stop decoding past it
    max_decode_s: float = 3600.0  # wall-clock budget per file; keep what was hashed by then
    # Decoder threads; 0 = as many as cores (lowest latency for one file on an idle machine).
    # One is the cheapest in CPU: scans hash many files at once, one per worker.
    threads: int = 1
    skip_nonref: bool = True
    # When sampling, hash the decoder's luma plane as it is (no RGB conversion; borders
    # and flat frames judged on luma too): about 1 bit from the RGB hash on average, for
    # less CPU per frame (see benchmarks/RESULTS.md, "video"). Hashing every frame
    # (vPDQ's exact mode, and references) always goes through RGB as Meta's vPDQ does.
    luma_plane: bool = True
    # When sampling, skip what lies between a sample and a keyframe that comes before
    # the next due time (the sample is then taken from that keyframe's group).
    skip_to_keyframes: bool = True
    # When sampling (seconds_per_hash > 0), skip the decoder's deblocking filter: a fifth
    # less decoding work for a picture a few PDQ bits off the exact one. Hashing every
    # frame (vPDQ's exact mode) always decodes exactly.
    skip_loop_filter: bool = True
    uniform_share: float = 0.95  # frames this much one colour are "near-uniform"
    # Also hash centred crops keeping these shares of each side (references: a copy cut
    # down to its centre then meets a reference hash made from the same view).
    crop_variants: tuple[CropShare, ...] = ()
    # Drop a frame whose PDQ is within this many bits of the last frame kept, unless
    # `dedup_max_gap_s` passed since (0 keeps every sampled frame). References are hashed
    # at every frame and deduplicated: a still scene keeps a frame every half second, a
    # fast pan keeps every frame, so any frame of the video is within these bits of one
    # kept frame (a query sampled anywhere, at any speed, meets a close reference frame).
    dedup_bits: int = 0
    dedup_max_gap_s: float = 0.5


def reference_options(seconds_per_hash: float = REFERENCE_SECONDS_PER_HASH) -> VideoOptions:
    """How reported videos are hashed: denser sampling, plus centred-crop hashes."""
    return VideoOptions(
        seconds_per_hash=seconds_per_hash,
        crop_variants=REFERENCE_CROP_VARIANTS,
        dedup_bits=REFERENCE_DEDUP_BITS,
        mirror=False,  # queries are tried mirrored; the bank needs one orientation
    )


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float  # nominal (average) frame rate; 0 if the container does not say
    duration_s: float  # declared duration; 0 if unknown
    codec: str


@dataclass
class VideoHashes:
    """vPDQ of one video: a FrameHash per sampled frame, plus what the matcher needs."""

    frames: list[FrameHash]
    uniform: list[bool]  # near-uniform frames: hashed and kept, but not evidence of a match
    mirrored: list[str]  # left-right mirror hash of each frame ('' when not computed)
    info: VideoInfo
    seconds_per_hash: float
    duration_s: float  # last frame's timestamp plus one frame
    crops: list[CropBox | None] = field(default_factory=list)  # None: nothing cropped
    # Per frame, the PDQ of each centred crop of `VideoOptions.crop_variants` (else empty).
    cropped: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def usable(self, min_quality: int = DEFAULT_MIN_QUALITY) -> list[FrameHash]:
        """Frames that count as evidence: good quality and not near-uniform."""
        return [
            frame
            for frame, flat in zip(self.frames, self.uniform, strict=True)
            if frame.quality >= min_quality and not flat
        ]

    def usable_variants(self, min_quality: int = DEFAULT_MIN_QUALITY) -> list[FrameHash]:
        """The centred-crop hashes of the usable frames, each with its frame's time."""
        return [
            FrameHash(pdq, frame.quality, frame.frame, frame.timestamp)
            for frame, flat, variants in zip(self.frames, self.uniform, self.cropped, strict=True)
            if frame.quality >= min_quality and not flat
            for pdq in variants
        ]

    def summary(self) -> list[dict[str, Any]]:
        """The `signals.vpdq` list of `ansim hash --json`."""
        return [
            {"frame": f.frame, "quality": f.quality, "pdq": f.pdq, "timestamp": f.timestamp}
            for f in self.frames
        ]


@dataclass(frozen=True)
class SampledFrame:
    index: int  # frame number in the stream (vPDQ's), from the time when frames were skipped
    timestamp: float  # seconds from the first frame
    pixels: np.ndarray  # (h, w, 3) RGB, or (h, w, 1) the decoder's luma plane
    studio_range: bool = False  # luma 16-235 (limited-range video), not 0-255


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(f"not a readable video container: {exc.strerror or exc}") from exc
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable video container: {exc}") from exc


def _info(container: av.container.InputContainer, stream: av.video.stream.VideoStream):
    context = stream.codec_context
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 0.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return VideoInfo(context.width, context.height, fps, max(0.0, duration), context.name)


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The first video stream that is a moving picture (not cover art)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError("file has no video stream")


def probe(path: Path) -> VideoInfo:
    """Size, frame rate, duration and codec of the video stream (no decoding)."""
    with _open(path) as container:
        return _info(container, _video_stream(container))


def sampling_interval(info: VideoInfo, options: VideoOptions) -> float:
    """Seconds between hashed frames: the configured rate, denser for short videos."""
    step = max(0.0, options.seconds_per_hash)
    if step and options.min_frames and info.duration_s > 0:
        # Halve the step until the video gets its frames: a half, quarter... of the rate
        # keeps the samples on the grid references are hashed on (a copy that kept the
        # timing then meets reference frames exactly, not half a step off).
        while step > 1 / 64 and info.duration_s / step < options.min_frames:
            step /= 2
    return step


def _check_limits(info: VideoInfo, options: VideoOptions) -> None:
    if info.width * info.height > options.max_frame_pixels:
        raise MediaError(
            f"video frames are {info.width}x{info.height}, over the limit of "
            f"{options.max_frame_pixels:,} pixels"
        )
    if info.duration_s > options.max_duration_s:
        raise MediaError(
            f"video declares {info.duration_s:,.0f} s, over the limit of "
            f"{options.max_duration_s:,.0f} s"
        )


def crop_share(pixels: np.ndarray, box: CropShare) -> np.ndarray:
    """The part of a frame inside `box` = (top, left, bottom, right) as shares of its sides."""
    height, width = pixels.shape[:2]
    top, left, bottom, right = box
    rows = slice(round(height * top), round(height * bottom))
    columns = slice(round(width * left), round(width * right))
    return np.ascontiguousarray(pixels[rows, columns])


def _luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """The decoder's Y plane as an (h, w, 1) view, without conversion."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : frame.width, None]


def _pixels(frame: av.VideoFrame, options: VideoOptions, sampling: bool) -> tuple[np.ndarray, bool]:
    """What is hashed of a decoded frame, and whether it is studio-range luma."""
    if (
        sampling
        and options.luma_plane
        and frame.format.name in LUMA_PLANE_FORMATS
        and not (options.max_hash_side and max(frame.width, frame.height) > options.max_hash_side)
    ):
        name = frame.format.name
        studio = frame.color_range != 2 and not name.startswith("yuvj") and name != "gray"
        return _luma_plane(frame), studio
    return _to_rgb(frame, options.max_hash_side), False


def _to_rgb(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return frame.reformat(
            width=max(2, round(width * scale)),
            height=max(2, round(height * scale)),
            format="rgb24",
            interpolation="AREA",
        ).to_ndarray()
    # Same pixels as `to_ndarray(format=...)`, a tenth of the time: the frame's own
    # reformatter keeps its conversion context between calls.
    return frame.reformat(format="rgb24").to_ndarray()


class _Timestamps:
    """Seconds from the first frame, from pts; repaired when pts is missing or goes back."""

    def __init__(self, fps: float) -> None:
        self._frame_s = 1.0 / (fps or 25.0)
        self.origin: float | None = None  # stream time of the first frame
        self._last = -math.inf
        self.repaired = 0

    def of(self, frame: av.VideoFrame) -> float:
        raw = frame.time
        if raw is not None and self.origin is None:
            self.origin = raw
        if raw is None or not math.isfinite(raw) or raw - self.origin <= self._last:
            self.repaired += 1
            stamp = 0.0 if self._last == -math.inf else self._last + self._frame_s
        else:
            stamp = raw - self.origin
        self._last = stamp
        return stamp


class _KeyframeSkip:
    """Which demuxed packets the decoder needs when only some frames are sampled.

    After a sample, packets are held back. A keyframe shown no later than the next due
    time drops what is held (those packets only led up to frames that are not due, and a
    keyframe needs no earlier picture) and is held in their place. When the stream
    reaches the due time, what is held is decoded: the sample then comes from the last
    keyframe before it. Times are stream seconds (pts or dts times the time base).
    """

    def __init__(self, time_base: Any) -> None:
        self._time_base = float(time_base) if time_base else None
        self._held: list[av.Packet] = []
        self._due: float | None = None
        self.dropped = 0

    def hold_until(self, due: float) -> None:
        self._due = due

    def offer(self, packet: av.Packet) -> list[av.Packet]:
        """The packets to decode now, in decoding order (none while holding)."""
        if self._due is None:
            return [packet]
        if packet.pts is None or packet.dts is None or self._time_base is None:
            return self.release(packet)
        if packet.is_keyframe and packet.pts * self._time_base <= self._due + 1e-6:
            # Decoding starts over here; keep holding in case a later keyframe is due too.
            self.dropped += len(self._held)
            self._held = [packet]
            return []
        if (
            packet.is_keyframe
            or packet.dts * self._time_base >= self._due - 1e-6
            or len(self._held) >= MAX_HELD_PACKETS
        ):
            return self.release(packet)
        self._held.append(packet)
        return []

    def release(self, packet: av.Packet | None = None) -> list[av.Packet]:
        """Stop holding: the held packets (and `packet`) to decode now."""
        released = self._held + ([packet] if packet is not None else [])
        self._held, self._due = [], None
        return released


def _packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    keyframes: _KeyframeSkip,
    notes: list[str],
) -> Iterator[av.Packet]:
    """The stream's packets that need decoding, in order; a read error ends the stream."""
    demuxed = container.demux(stream)
    while True:
        try:
            packet = next(demuxed)
        except StopIteration:
            break
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            notes.append(f"reading the container stopped early: {exc}")
            break
        yield from keyframes.offer(packet)
    yield from keyframes.release()


def iter_sampled_frames(
    path: Path,
    options: VideoOptions = VideoOptions(),
    warnings: list[str] | None = None,
    on_open: Callable[[VideoInfo], None] | None = None,
) -> Iterator[SampledFrame]:
    """Decode a video's first video stream and yield the frames due by the sampling rate.

    Raises MediaError when nothing can be decoded; problems met after frames came out
    (corrupt packets, a truncated file, broken timestamps, limits reached) end or repair
    the stream and are appended to `warnings` instead. `on_open` gets the stream's
    `VideoInfo` before the first frame (the file is opened once).
    """
    notes = warnings if warnings is not None else []
    with _open(path) as container:
        stream = _video_stream(container)
        info = _info(container, stream)
        _check_limits(info, options)
        if on_open is not None:
            on_open(info)
        stream.thread_type = "AUTO"
        stream.thread_count = options.threads
        step = sampling_interval(info, options)
        skipping = options.skip_nonref and step * info.fps >= SKIP_NONREF_MIN_FRAMES
        if skipping:
            stream.codec_context.skip_frame = "NONREF"
        if step and options.skip_loop_filter:
            stream.codec_context.options = {"skip_loop_filter": "all"}
        clock = _Timestamps(info.fps)
        keyframes = _KeyframeSkip(stream.time_base)
        skipping_keyframes = bool(step) and options.skip_to_keyframes
        deadline = time.monotonic() + options.max_decode_s
        next_due = 0.0
        decoded = errors = consecutive_errors = 0
        for packet in _packets(container, stream, keyframes, notes):
            try:
                frames = packet.decode()
                consecutive_errors = 0
            except (av.error.FFmpegError, ValueError) as exc:
                errors += 1
                consecutive_errors += 1
                if consecutive_errors >= MAX_CONSECUTIVE_DECODE_ERRORS:
                    notes.append(f"decoding stopped after repeated errors: {exc}")
                    break
                continue
            for frame in frames:
                index = decoded
                decoded += 1
                if frame.width * frame.height > options.max_frame_pixels:
                    raise MediaError(
                        f"a frame is {frame.width}x{frame.height}, over the limit of "
                        f"{options.max_frame_pixels:,} pixels"
                    )
                stamp = clock.of(frame)
                if stamp > options.max_duration_s:
                    notes.append(f"stopped at the duration limit of {options.max_duration_s} s")
                    return
                if step and stamp + 1e-6 < next_due:
                    continue
                if step:
                    next_due = (math.floor(stamp / step + 1e-6) + 1) * step
                    # Broken timestamps (repaired) cannot say where the next sample lies.
                    if skipping_keyframes and clock.repaired == 0 and clock.origin is not None:
                        keyframes.hold_until(clock.origin + next_due)
                if skipping or skipping_keyframes:
                    # Skipped frames were never counted; number the frame by its time.
                    index = round(stamp * info.fps)
                pixels, studio_range = _pixels(frame, options, bool(step))
                yield SampledFrame(index, stamp, pixels, studio_range)
            if time.monotonic() > deadline:
                if decoded == 0:
                    raise MediaError(
                        f"no frame decoded within the time limit of {options.max_decode_s} s"
                    )
                notes.append(f"stopped at the time limit of {options.max_decode_s} s decoding")
                break
        if errors:
            notes.append(f"{errors} corrupt packet(s) skipped")
        if clock.repaired > 1:
            notes.append(f"{clock.repaired} frame(s) had missing or backward timestamps")
        if decoded == 0:
            raise MediaError("video has no decodable frames (empty, truncated or corrupt)")


def hash_video(path: Path, options: VideoOptions = VideoOptions()) -> VideoHashes:
    """vPDQ hashes of a video file. Raises MediaError when no frame can be hashed."""
    # Imported here: its scipy.sparse is a start-up cost for every process that hashes
    # files (scan and crawl workers among them), most of which never see a video.
    from ansim.detector.pdq_fast import hash_frame

    warnings: list[str] = []
    frames: list[FrameHash] = []
    uniform: list[bool] = []
    mirrored: list[str] = []
    crops: list[CropBox | None] = []
    cropped: list[list[str]] = []
    opened: list[VideoInfo] = []
    last_stamp = 0.0
    sampled_frames = iter_sampled_frames(path, options, warnings, on_open=opened.append)
    if options.crop_borders:
        boxed = smooth_crops(sampled_frames, lambda s: s.pixels, lambda s: s.timestamp)
    else:
        boxed = ((sampled, None) for sampled in sampled_frames)
    try:
        for sampled, found in boxed:
            pixels, box = sampled.pixels, None
            if found is not None and not found.is_full(*pixels.shape[:2]):
                pixels, box = crop(pixels, found), found
            pdq, quality, mirror = hash_frame(pixels, options.mirror, sampled.studio_range)
            if (
                options.dedup_bits
                and frames
                and sampled.timestamp - frames[-1].timestamp < options.dedup_max_gap_s
                and pdq_distance(pdq, frames[-1].pdq) <= options.dedup_bits
            ):
                continue
            frames.append(FrameHash(pdq, quality, sampled.index, round(sampled.timestamp, 3)))
            uniform.append(uniform_share(pixels) >= options.uniform_share)
            mirrored.append(mirror)
            crops.append(box)
            cropped.append(
                [
                    hash_frame(crop_share(pixels, k), studio_range=sampled.studio_range)[0]
                    for k in options.crop_variants
                ]
            )
            last_stamp = sampled.timestamp
    except MediaError:
        if not frames:
            raise
        warnings.append("decoding failed part-way; the frames before the failure were kept")
    if not frames:
        raise MediaError("video has no decodable frames (empty, truncated or corrupt)")
    if len(frames) == 1:
        warnings.append("only one frame was hashed: it can match as a still, not by duration")
    info = opened[0]  # frames came out, so the file was opened
    frame_s = 1.0 / info.fps if info.fps else 0.0
    return VideoHashes(
        frames=frames,
        uniform=uniform,
        mirrored=mirrored,
        info=info,
        seconds_per_hash=sampling_interval(info, options),
        duration_s=last_stamp + frame_s,
        crops=crops,
        cropped=cropped,
        warnings=warnings,
    )
