"""Video test media made from still photos, and the repost transforms applied to videos.

Everything here writes real encoded files (H.264 in MP4 through PyAV), so the hasher under
test decodes what it would meet on the web. Photos become videos by panning and zooming a
crop window across them, one photo per shot; title cards and black frames can be spliced in
to build the "shared intro" negative cases.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class EncodeSettings:
    fps: float = 25.0
    crf: int = 23
    preset: str = "veryfast"
    bitrate: int | None = None  # bits per second; overrides crf when set
    gop: int = 50


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 file."""

    def __init__(self, path: Path, width: int, height: int, settings: EncodeSettings) -> None:
        self._container = av.open(str(path), mode="w")
        rate = Fraction(settings.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        # yuv420p needs even sides.
        self._stream.width = width - width % 2
        self._stream.height = height - height % 2
        self._stream.pix_fmt = "yuv420p"
        options = {"preset": settings.preset, "g": str(settings.gop)}
        if settings.bitrate:
            self._stream.bit_rate = settings.bitrate
        else:
            options["crf"] = str(settings.crf)
        self._stream.options = options

    def write(self, rgb: np.ndarray) -> None:
        height, width = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]), "rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class SlideshowSpec:
    width: int = 640
    height: int = 360
    duration_s: float = 20.0
    seconds_per_shot: float = 4.0
    motion: float = 0.15  # pan and zoom over a shot, as a share of the crop window
    encode: EncodeSettings = EncodeSettings()


def pan_zoom_frames(
    images: Sequence[Path], spec: SlideshowSpec, rng: random.Random
) -> Iterator[np.ndarray]:
    """Frames of a slideshow: each shot pans and zooms a crop window across one photo."""
    total = round(spec.duration_s * spec.encode.fps)
    per_shot = max(1, round(spec.seconds_per_shot * spec.encode.fps))
    aspect = spec.width / spec.height
    produced = 0
    shot = 0
    while produced < total:
        with Image.open(images[shot % len(images)]) as opened:
            photo = opened.convert("RGB")
        start = _random_window(photo.size, aspect, rng)
        end = _moved_window(start, photo.size, spec.motion, rng)
        count = min(per_shot, total - produced)
        for index in range(count):
            mix = index / max(1, count - 1)
            box = tuple(a + (b - a) * mix for a, b in zip(start, end, strict=True))
            yield np.asarray(
                photo.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box)
            )
        produced += count
        shot += 1


def _random_window(
    size: tuple[int, int], aspect: float, rng: random.Random
) -> tuple[float, float, float, float]:
    """A crop box of the given aspect covering 55-95% of the photo's fitting window."""
    width, height = size
    fit_w = min(width, height * aspect)
    scale = rng.uniform(0.55, 0.95)
    box_w = fit_w * scale
    box_h = box_w / aspect
    left = rng.uniform(0, width - box_w)
    top = rng.uniform(0, height - box_h)
    return (left, top, left + box_w, top + box_h)


def _moved_window(
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    motion: float,
    rng: random.Random,
) -> tuple[float, float, float, float]:
    """`box` panned by up to `motion` of its size and zoomed by up to that share, in bounds."""
    left, top, right, bottom = box
    zoom = 1 + rng.uniform(-motion, motion)
    width = min((right - left) * zoom, size[0])
    height = width * (bottom - top) / (right - left)
    if height > size[1]:
        width, height = width * size[1] / height, size[1]
    centre_x = (left + right) / 2 + rng.uniform(-motion, motion) * (right - left)
    centre_y = (top + bottom) / 2 + rng.uniform(-motion, motion) * (bottom - top)
    new_left = min(max(0.0, centre_x - width / 2), size[0] - width)
    new_top = min(max(0.0, centre_y - height / 2), size[1] - height)
    return (new_left, new_top, new_left + width, new_top + height)


def title_card(text: str, width: int, height: int, background=(0, 0, 0), ink=(235, 235, 235)):
    """A flat card with a line of text, like an intro or credits frame."""
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, height // 12))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(
        ((width - (right - left)) / 2, (height - (bottom - top)) / 2), text, fill=ink, font=font
    )
    return np.asarray(image)


def write_video(path: Path, frames: Iterable[np.ndarray], settings: EncodeSettings) -> Path:
    iterator = iter(frames)
    first = next(iterator)
    with VideoWriter(path, first.shape[1], first.shape[0], settings) as writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return path


def synthesize_slideshow(
    images: Sequence[Path],
    path: Path,
    spec: SlideshowSpec = SlideshowSpec(),
    seed: int = 0,
    intro: Sequence[np.ndarray] = (),
) -> Path:
    """Write a pan-and-zoom slideshow of `images`, optionally after some intro frames."""
    rng = random.Random(seed)

    def frames() -> Iterator[np.ndarray]:
        yield from intro
        yield from pan_zoom_frames(images, spec, rng)

    return write_video(path, frames(), spec.encode)


def intro_frames(title: str, width: int, height: int, fps: float, seconds: float):
    """Black frames then a title card, `seconds` long in all (half each)."""
    half = max(1, round(seconds * fps / 2))
    black = np.zeros((height, width, 3), dtype=np.uint8)
    card = title_card(title, width, height)
    return [black] * half + [card] * half


# ---- repost transforms ---------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    """A simulated repost: per-frame pixels, timing and encoding of the copy."""

    name: str
    frame_op: Callable[[np.ndarray], np.ndarray] | None = None
    encode: EncodeSettings | None = None  # None: same fps as the source, default quality
    fps: float | None = None  # output frame rate (frames are dropped or repeated)
    speed: float = 1.0
    clip_s: float | None = None  # keep this many seconds from the middle


def _resize_height(rgb: np.ndarray, height: int) -> np.ndarray:
    width = max(2, round(rgb.shape[1] * height / rgb.shape[0]))
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


def _crop_center(rgb: np.ndarray, fraction: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    dy, dx = round(height * fraction / 2), round(width * fraction / 2)
    return rgb[dy : height - dy, dx : width - dx]


def letterbox(rgb: np.ndarray, fraction: float = 0.15, colour=(0, 0, 0)) -> np.ndarray:
    """Bars above and below, each `fraction` of the picture height."""
    height, width = rgb.shape[:2]
    bar = round(height * fraction)
    out = np.empty((height + 2 * bar, width, 3), dtype=np.uint8)
    out[:] = colour
    out[bar : bar + height] = rgb
    return out


def pillarbox(rgb: np.ndarray, fraction: float = 0.2, colour=(24, 40, 96)) -> np.ndarray:
    height, width = rgb.shape[:2]
    bar = round(width * fraction)
    out = np.empty((height, width + 2 * bar, 3), dtype=np.uint8)
    out[:] = colour
    out[:, bar : bar + width] = rgb
    return out


def _grayscale(rgb: np.ndarray) -> np.ndarray:
    grey = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def _sepia(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb @ SEPIA.T, 0, 255).astype(np.uint8)


def _logo(rgb: np.ndarray) -> np.ndarray:
    """A half-opaque badge with text in the bottom-right corner, ~6% of the frame."""
    image = Image.fromarray(rgb).convert("RGBA")
    height, width = rgb.shape[:2]
    badge_w, badge_h = width // 4, height // 4
    badge = Image.new("RGBA", (badge_w, badge_h), (255, 200, 0, 150))
    draw = ImageDraw.Draw(badge)
    font = ImageFont.load_default(size=max(10, badge_h // 3))
    draw.text((badge_w // 10, badge_h // 4), "REPOST", fill=(20, 20, 20, 230), font=font)
    image.alpha_composite(badge, (width - badge_w - width // 40, height - badge_h - height // 40))
    return np.asarray(image.convert("RGB"))


def _hflip(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, ::-1])


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in [
        Transform("reencode_low_bitrate", encode=EncodeSettings(bitrate=150_000)),
        Transform("resize_240p", frame_op=lambda f: _resize_height(f, 240)),
        Transform("crop_10pct", frame_op=lambda f: _crop_center(f, 0.10)),
        Transform("letterbox", frame_op=letterbox),
        Transform("pillarbox", frame_op=pillarbox),
        Transform("grayscale", frame_op=_grayscale),
        Transform("sepia", frame_op=_sepia),
        Transform("logo", frame_op=_logo),
        Transform("hflip", frame_op=_hflip),
        Transform("fps_15", fps=15.0),
        Transform("clip_10s", clip_s=10.0),
        Transform("clip_5s", clip_s=5.0),
        Transform("speed_1.1x", speed=1.1),
    ]
}


def read_frames(path: Path, max_side: int = 0) -> tuple[list[np.ndarray], float]:
    """Every frame of a (short) video as RGB, and its frame rate. For building copies only.

    `max_side` shrinks larger videos while reading (keeps memory and build time down).
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.base_rate or 25)
        frames = []
        for frame in container.decode(stream):
            scale = max_side / max(frame.width, frame.height) if max_side else 1.0
            if scale < 1.0:
                width = max(2, round(frame.width * scale / 2) * 2)
                height = max(2, round(frame.height * scale / 2) * 2)
                frame = frame.reformat(width=width, height=height, interpolation="AREA")
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames, fps


def apply_transform(
    source: Path,
    out: Path,
    transform: Transform,
    frames_fps: tuple[list[np.ndarray], float] | None = None,
) -> Path:
    """Write the transformed copy of `source` to `out`.

    `frames_fps` (from `read_frames`) lets a caller decode the source once for many copies.
    """
    frames, fps = frames_fps or read_frames(source)
    if transform.clip_s is not None:
        keep = round(transform.clip_s * fps)
        start = max(0, (len(frames) - keep) // 2)
        frames = frames[start : start + keep]
    out_fps = transform.fps or fps
    # Source frame for each output frame: resample time, then apply the speed-up.
    count = int(len(frames) / fps / transform.speed * out_fps)
    picks = [min(len(frames) - 1, int(i / out_fps * transform.speed * fps)) for i in range(count)]
    encode = transform.encode or EncodeSettings()
    encode = EncodeSettings(
        fps=out_fps,
        crf=encode.crf,
        preset=encode.preset,
        bitrate=encode.bitrate,
        gop=encode.gop,
    )
    op = transform.frame_op or (lambda f: f)
    return write_video(out, (op(frames[i]) for i in picks), encode)


def cut_clip(
    source: Path,
    out: Path,
    start_s: float,
    length_s: float,
    settings: EncodeSettings | None = None,
) -> Path:
    """Re-encode `length_s` seconds of `source` from `start_s`, streaming (any length)."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or 25)

        def frames() -> Iterator[np.ndarray]:
            for frame in container.decode(stream):
                if frame.time is None or frame.time + 1e-6 < start_s:
                    continue
                if frame.time >= start_s + length_s - 1e-6:
                    return
                yield frame.to_ndarray(format="rgb24")

        return write_video(out, frames(), settings or EncodeSettings(fps=fps))
