"""The real type of a file, from its first bytes rather than its name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import filetype

HEAD_BYTES = 8192

# Formats each modality's hasher can decode; anything else sniffed is "unsupported".
IMAGE_MIMES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/x-icon",
}


_TEXT_BOMS = (
    b"\xef\xbb\xbf",  # UTF-8
    b"\xff\xfe",  # UTF-16 LE (and UTF-32 LE)
    b"\xfe\xff",  # UTF-16 BE
    b"\x00\x00\xfe\xff",  # UTF-32 BE
)


@dataclass(frozen=True)
class Sniffed:
    modality: str  # image | video | audio | text | unknown
    mime: str


def sniff_bytes(head: bytes) -> Sniffed:
    if not head:
        return Sniffed("unknown", "application/x-empty")
    if head.startswith(_TEXT_BOMS):
        # UTF-16/32 text is full of NUL bytes; its byte-order mark says what it is.
        return Sniffed("text", "text/plain")
    kind = filetype.guess(head)
    if kind is not None:
        top = kind.mime.split("/", 1)[0]
        if top in ("image", "video", "audio"):
            return Sniffed(top, kind.mime)
        return Sniffed("unknown", kind.mime)
    if _looks_like_text(head):
        return Sniffed("text", "text/plain")
    return Sniffed("unknown", "application/octet-stream")


def sniff_file(path: Path) -> Sniffed:
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(HEAD_BYTES))


def _looks_like_text(head: bytes) -> bool:
    """Text has no NUL bytes and few control characters; legacy encodings pass too."""
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100
