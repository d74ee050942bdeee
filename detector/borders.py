"""Flat borders (letterbox, pillarbox, padding) found and cropped before hashing.

A border is a run of rows (or columns) at a frame edge that are all close to one colour,
whatever the colour: black bars, a brand's coloured pillars, grey padding. Borders come in
opposite pairs of about the same size (top and bottom, left and right); a flat run on one
edge alone is left, as it is mostly content. PDQ hashes the
whole frame, so a copy with bars added hashes far from its original (Meta's vPDQ matches
the `-bar` samples to their `-no-bar` originals at 0%); cropping the bars on both sides
makes them hash alike again.

Detection is per frame, so bars that appear, change colour or resize during a video are
followed. It runs again on what is left after a crop, so a flat strip of content next to
a bar (a clear sky under a letterbox) is removed in the original and in the copy alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

FrameT = TypeVar("FrameT")

# A pixel belongs to the border colour if every channel is within this many levels.
# Encoders add a few levels of noise to bars; real content rarely stays this close to
# one colour across a whole row (a row of a white door can: see `smooth_crops`).
DEFAULT_TOLERANCE = 16
# Rows are tested on about this many pixels each (every k-th), exact in the scan direction.
SAMPLES_PER_LINE = 160
# Share of a row's pixels allowed to differ (noise, a stray subtitle pixel).
DEFAULT_MAX_OUTLIERS = 0.02
# A bar with a logo, a watermark or a subtitle stamped over it near a corner: its lines
# are flat but for up to this share at one end. Content (a sky, a wall) often looks the
# same, so such lines only count on a side whose opposite bar is plainly flat.
MAX_OVERLAY_SHARE = 0.3
# Never crop more than this share of a side per pass; keeps a mostly-flat frame whole.
MAX_SIDE_FRACTION = 0.45
# A frame whose picture would shrink below this share of either side is left alone.
MIN_CONTENT_FRACTION = 0.2
MAX_PASSES = 3
# Opposite bars may differ by this share (odd pixel counts, a dark content edge).
PAIR_TOLERANCE = 0.25


@dataclass(frozen=True)
class CropBox:
    """Content box in pixels: rows [top, bottom) and columns [left, right)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def is_full(self, height: int, width: int) -> bool:
        return (self.top, self.bottom, self.left, self.right) == (0, height, 0, width)


def _flat_lines(off: np.ndarray, max_outliers: float, overlay: bool) -> np.ndarray:
    """Per line (row of `off`, True where a pixel is off the border colour): flat as a whole,
    or with `overlay`, flat but for one end of it."""
    allowed = max_outliers * off.shape[1]
    flat = np.count_nonzero(off, axis=1) <= allowed
    if overlay:
        keep = off.shape[1] - int(off.shape[1] * MAX_OVERLAY_SHARE)
        allowed = max_outliers * keep
        flat |= np.count_nonzero(off[:, :keep], axis=1) <= allowed
        flat |= np.count_nonzero(off[:, -keep:], axis=1) <= allowed
    return flat


def _median_colour(line: np.ndarray) -> tuple[int, ...]:
    """Per-channel median of a (length, channels) line, truncated to whole levels."""
    middle = line.shape[0] // 2
    if line.shape[0] % 2:
        values = np.partition(line, middle, axis=0)[middle]
        return tuple(int(v) for v in values)
    pair = np.partition(line, [middle - 1, middle], axis=0)[middle - 1 : middle + 1]
    return tuple((int(a) + int(b)) // 2 for a, b in zip(*pair, strict=True))


def _off_colour(chunk: np.ndarray, colour: tuple[int, ...], tolerance: int) -> np.ndarray:
    """(lines, length) True where any channel is more than `tolerance` from `colour`."""
    import cv2

    low = tuple(max(0, c - tolerance) for c in colour)
    high = tuple(min(255, c + tolerance) for c in colour)
    return cv2.inRange(np.ascontiguousarray(chunk), low, high) == 0


def _flat_run(lines: np.ndarray, tolerance: int, max_outliers: float, overlay: bool = False) -> int:
    """How many leading lines (axis 0 of an (n, length, channels) array) match the first
    line's colour.

    Scans outward in growing blocks: most frames have no border and stop at the first block.
    """
    if lines.shape[0] == 0:
        return 0
    colour = _median_colour(lines[0])
    start, block = 0, 8
    while start < lines.shape[0]:
        off = _off_colour(lines[start : start + block], colour, tolerance)
        is_flat = _flat_lines(off, max_outliers, overlay)
        if not is_flat.all():
            return start + int(np.argmin(is_flat))
        start += block
        block *= 2
    return lines.shape[0]


def _paired(first: int, second: int) -> tuple[int, int]:
    """Opposite runs, kept only when both exist and are of about the same size.

    Players and editors add bars in pairs (letterbox: top and bottom; pillarbox: left and
    right). A flat run on one edge only is far more often content (a wall, a sky, a slide's
    margin), and cropping it would make frames of the same video crop differently.
    """
    if min(first, second) == 0 or abs(first - second) > max(2, PAIR_TOLERANCE * max(first, second)):
        return 0, 0
    return first, second


def _bar_pair(
    first: np.ndarray, second: np.ndarray, tolerance: int, max_outliers: float
) -> tuple[int, int]:
    """Paired bar sizes at two opposite edges (lines ordered from each edge inward).

    When plainly flat runs do not pair, a side may count lines flat but for an overlay at
    one end, provided the opposite side is plainly flat (a logo over one bar).
    """
    plain = _flat_run(first, tolerance, max_outliers), _flat_run(second, tolerance, max_outliers)
    found = _paired(*plain)
    if found != (0, 0) or max(plain) == 0:
        return found
    for side in (0, 1) if all(plain) else (plain.index(0),):
        lines = second if side else first
        runs = list(plain)
        runs[side] = _flat_run(lines, tolerance, max_outliers, overlay=True)
        found = _paired(*runs)
        if found != (0, 0):
            return found
    return 0, 0


def detect_borders(
    rgb: np.ndarray,
    tolerance: int = DEFAULT_TOLERANCE,
    max_outliers: float = DEFAULT_MAX_OUTLIERS,
) -> CropBox:
    """The box of a frame ((h, w, 3) RGB or (h, w, 1) luma) left after removing flat
    borders on all four sides."""
    found = _detect(rgb, tolerance, max_outliers)
    return found if found is not None else CropBox(0, rgb.shape[0], 0, rgb.shape[1])


def _detect(rgb: np.ndarray, tolerance: int, max_outliers: float) -> CropBox | None:
    """The content box, or None when the frame is too flat to tell bars from picture."""
    height, width = rgb.shape[:2]
    box = CropBox(0, height, 0, width)
    for _ in range(MAX_PASSES):
        view = rgb[box.top : box.bottom, box.left : box.right]
        max_rows = int(box.height * MAX_SIDE_FRACTION)
        max_cols = int(box.width * MAX_SIDE_FRACTION)
        along_row = max(1, box.width // SAMPLES_PER_LINE)
        along_column = max(1, box.height // SAMPLES_PER_LINE)
        rows = view[:, ::along_row]
        columns = view[::along_column].transpose(1, 0, 2)
        top, bottom = _bar_pair(rows[:max_rows], rows[::-1][:max_rows], tolerance, max_outliers)
        # Later scans only crop more: a frame already too flat to tell stays so.
        if box.height - top - bottom < MIN_CONTENT_FRACTION * height:
            return None
        left, right = _bar_pair(
            columns[:max_cols], columns[::-1][:max_cols], tolerance, max_outliers
        )
        if top == bottom == left == right == 0:
            break
        box = CropBox(box.top + top, box.bottom - bottom, box.left + left, box.right - right)
    if box.height < MIN_CONTENT_FRACTION * height or box.width < MIN_CONTENT_FRACTION * width:
        return None
    return box


def crop(rgb: np.ndarray, box: CropBox) -> np.ndarray:
    return rgb[box.top : box.bottom, box.left : box.right]


def least_crop(boxes: list[CropBox]) -> CropBox:
    """The box that crops on each side only what every one of `boxes` crops there."""
    return CropBox(
        min(b.top for b in boxes),
        max(b.bottom for b in boxes),
        min(b.left for b in boxes),
        max(b.right for b in boxes),
    )


@dataclass(frozen=True)
class _Detected:
    timestamp: float
    shape: tuple[int, int]
    box: CropBox | None  # None: too flat to tell (a fade to black, a plain wall)


def smooth_crops(
    frames: Iterable[FrameT],
    pixels: Callable[[FrameT], np.ndarray],
    timestamp: Callable[[FrameT], float],
    radius: int = 2,
    window_s: float = 2.5,
) -> Iterator[tuple[FrameT, CropBox]]:
    """Pair each frame of a stream with its crop box, agreed with its neighbours.

    A side is cropped only as far as every frame within `radius` frames and `window_s`
    seconds crops it (same-sized frames only). Bars stay put for seconds, so they pass;
    a flat wall that fills one frame's edge while the camera moves does not. Frames too flat
    to tell (a fade to black) have no say, and take their neighbours' box. Bars that change
    mid-video are followed after `radius` frames. Holds at most `radius` frames ahead;
    boxes alone are kept for the frames behind.
    """
    behind: deque[_Detected] = deque(maxlen=radius)
    ahead: deque[tuple[FrameT, _Detected]] = deque()

    def emit() -> tuple[FrameT, CropBox]:
        frame, own = ahead.popleft()
        near = [
            d.box
            for d in (*behind, own, *(a for _, a in ahead))
            if d.box is not None
            and d.shape == own.shape
            and abs(d.timestamp - own.timestamp) <= window_s
        ]
        behind.append(own)
        height, width = own.shape
        return frame, least_crop(near) if near else CropBox(0, height, 0, width)

    for frame in frames:
        rgb = pixels(frame)
        found = _detect(rgb, DEFAULT_TOLERANCE, DEFAULT_MAX_OUTLIERS)
        ahead.append((frame, _Detected(timestamp(frame), rgb.shape[:2], found)))
        if len(ahead) > radius:
            yield emit()
    while ahead:
        yield emit()


def uniform_share(rgb: np.ndarray, tolerance: int = DEFAULT_TOLERANCE) -> float:
    """Share of pixels within `tolerance` of the frame's median colour.

    Near 1 for black, white or single-colour frames and for title cards (a few letters on
    a plain ground): frames that unrelated videos share, so they must not count as
    evidence of a match.
    """
    step = max(1, min(rgb.shape[0], rgb.shape[1]) // 64)
    sample = np.ascontiguousarray(rgb[::step, ::step]).reshape(-1, rgb.shape[2])
    off = _off_colour(sample[:, None, :], _median_colour(sample), tolerance)
    return 1.0 - np.count_nonzero(off) / len(sample)
