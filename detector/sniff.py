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


@dataclass(frozen=True)
class Sniffed:
    modality: str  # image | video | audio | text | unknown
    mime: str


def sniff_bytes(head: bytes) -> Sniffed:
    if not head:
        return Sniffed("unknown", "application/x-empty")
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
