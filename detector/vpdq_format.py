"""vPDQ's text format: one line per hashed frame, `frame,quality,pdq_hex,timestamp`.

This is what Meta's `vpdq-hash-video` writes and what partners exchange, e.g.
`0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000`
(frame number, PDQ quality 0-100, 64 hex digits, seconds with three decimals).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from ansim.detector.errors import MediaError
from ansim.detector.pdq import hex_to_bytes
from ansim.detector.signals import FrameHash

MAX_LINE_ERRORS_SHOWN = 3


class VpdqFormatError(MediaError):
    """A vPDQ hash file that does not parse; the message names the bad lines."""


def format_line(frame: FrameHash) -> str:
    return f"{frame.frame},{frame.quality},{frame.pdq},{frame.timestamp:.3f}"


def format_vpdq(frames: Iterable[FrameHash]) -> str:
    return "".join(format_line(frame) + "\n" for frame in frames)


def parse_line(line: str) -> FrameHash:
    """One `frame,quality,pdq_hex,timestamp` line; raises ValueError saying what is wrong."""
    fields = [field.strip() for field in line.split(",")]
    if len(fields) != 4:
        raise ValueError(f"expected 4 comma-separated fields, got {len(fields)}")
    frame_text, quality_text, pdq_hex, stamp_text = fields
    frame = int(frame_text)
    quality = int(quality_text)
    timestamp = float(stamp_text)
    if frame < 0:
        raise ValueError(f"frame number {frame} is negative")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} is outside 0-100")
    if not math.isfinite(timestamp) or timestamp < 0:
        raise ValueError(f"timestamp {stamp_text} is not a time in seconds")
    hex_to_bytes(pdq_hex)
    return FrameHash(pdq_hex.lower(), quality, frame, timestamp)


def parse_vpdq(text: str, source: str = "vPDQ text") -> list[FrameHash]:
    """Every frame of a vPDQ hash file, in file order. Blank and `#` lines are skipped.

    Raises VpdqFormatError listing the first bad lines, or when no frame is found.
    """
    frames: list[FrameHash] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            frames.append(parse_line(stripped))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        shown = "; ".join(problems[:MAX_LINE_ERRORS_SHOWN])
        more = len(problems) - MAX_LINE_ERRORS_SHOWN
        raise VpdqFormatError(
            f"{source} is not in vPDQ format ({shown}{f'; and {more} more' if more > 0 else ''})"
        )
    if not frames:
        raise VpdqFormatError(f"{source} holds no vPDQ frame lines")
    return frames


def read_vpdq_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VpdqFormatError(f"{path.name} is not text (vPDQ files are ASCII)") from exc
    except OSError as exc:
        raise VpdqFormatError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc


def read_vpdq_file(path: Path) -> list[FrameHash]:
    return parse_vpdq(read_vpdq_text(path), source=path.name)


def split_videos(text: str, source: str = "vPDQ text") -> list[tuple[str | None, list[FrameHash]]]:
    """Several videos in one text: each block of frame lines under a `# label` line.

    A plain vPDQ file (no `#` lines) is one video with no label. This is what
    `ansim ref export --format vpdq` writes for more than one reference.
    """
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            blocks.append((stripped.lstrip("#").strip() or None, []))
        elif stripped:
            blocks[-1][1].append(stripped)
    videos = []
    for label, lines in blocks:
        if lines:
            name = f"{source} [{label}]" if label else source
            videos.append((label, parse_vpdq("\n".join(lines), source=name)))
    if not videos:
        raise VpdqFormatError(f"{source} holds no vPDQ frame lines")
    return videos


def format_videos(videos: Iterable[tuple[str, Iterable[FrameHash]]]) -> str:
    """Videos as one text; a single video stays a plain vPDQ file that Meta's tools read."""
    listed = list(videos)
    if len(listed) == 1:
        return format_vpdq(listed[0][1])
    return "".join(f"# {label}\n{format_vpdq(frames)}" for label, frames in listed)
