"""Text in, text signals out: decoding, refusal of bad input, shingling and MinHash.

One entry point for every source of text: `text_signals(text)` takes a string (a text
file's decoded content, or the text the crawler extracted from a page). `decode_text`
turns bytes into that string, detecting legacy Korean encodings.

Signals (all derived from `text_normalize.normalize(text)`; the text itself is dropped):

- `normalized_sha256`: SHA-256 of the normalized text (equal = same text, any evasion
  of the kinds `text_normalize` undoes).
- `minhash`: a `TextSignature`: the datasketch MinHash (affine32 scheme, `NUM_PERM`
  permutations) over the character `SHINGLE_SIZE`-grams of the normalized text, the sorted
  32-bit hashes of those shingles (for exact Jaccard and containment at verification),
  and, for texts long enough to hide a short post inside, MinHashes of overlapping
  windows (so LSH finds a short reference pasted into a long page).

Shingle hashes are one-way but short shingles of a known language can be guessed; treat
signatures as sensitive, not secret.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import struct
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from ansim.detector.errors import LowQuality, MediaError
from ansim.detector.filehash import bytes_digests
from ansim.detector.signals import MediaSignals
from ansim.detector.text_normalize import NORMALIZER_VERSION, normalize

if TYPE_CHECKING:
    import datasketch

SHINGLE_SIZE = 3
NUM_PERM = 128
# Signal names (the `MediaSignals.extra` keys, stored kinds and bank names).
MINHASH_SIGNAL = "text_minhash"
NORMALIZED_SHA256_SIGNAL = "text_sha256"
MINHASH_SEED = 20240601
MINHASH_SCHEME = "affine32"
# Texts whose normalized form is shorter than this are refused: a few characters recur in
# unrelated texts, so a match on them would be noise. Configurable per call.
DEFAULT_MIN_CHARS = 12
DEFAULT_MAX_BYTES = 64 << 20
# Smallest window (in shingles) for the containment search; windows double from here,
# overlap by 3/4, and stop at half the text. A post of L shingles lies whole inside some
# window of size W in [4L/3, 8L/3), so that window's Jaccard with it is at least 3/8.
MIN_WINDOW = 16
MAX_WINDOW = 1024
MAX_WINDOWS = 20_000
# Permuting this many shingles at once bounds memory on megabyte-long texts.
CHUNK_SHINGLES = 1 << 15
# Binary posing as text: the share of control, unassigned, private-use or replacement
# characters above which decoded "text" is refused.
MAX_JUNK_SHARE = 0.05
JUNK_SAMPLE_CHARS = 1 << 18


class TooShort(LowQuality):
    """The normalized text is too short to match safely."""


@dataclass(frozen=True)
class TextOptions:
    min_chars: int = DEFAULT_MIN_CHARS
    max_bytes: int = DEFAULT_MAX_BYTES
    windows: bool = True  # compute window MinHashes (needed to find a post inside a page)


# --- decoding ---------------------------------------------------------------------------

_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def decode_text(data: bytes) -> DecodedText:
    """Decode bytes that should be text: BOM, then UTF-8, then Korean legacy (CP949, which
    contains EUC-KR), then charset-normalizer's guess. Raises MediaError for binary data or
    bytes no encoding explains."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _checked(_decode(data, encoding), encoding)
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" not in data:
        try:
            text = data.decode("cp949")
        except UnicodeDecodeError:
            text = None
        # charset-normalizer guesses Big5 or GBK for short Korean texts; Hangul that makes
        # up the bulk of a CP949 decoding is not there by chance.
        if text is not None and _hangul_share(text) >= 0.5:
            return _checked(text, "cp949")
    return _checked_guess(data)


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise MediaError(
            f"text starts with a {encoding} byte-order mark but is not {encoding}"
        ) from exc


def _checked_guess(data: bytes) -> DecodedText:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding:
        return _checked(str(best), best.encoding)
    # Mostly UTF-8 with a few broken bytes (a truncated download): keep it, say so.
    text = data.decode("utf-8", errors="replace")
    broken = text.count("\ufffd")
    if broken <= max(1, len(text) // 1000):
        return _checked(
            text, "utf-8", [f"{broken} invalid UTF-8 byte sequence(s) replaced with U+FFFD"]
        )
    raise MediaError("not text: the bytes fit no known text encoding (binary data?)")


def _hangul_share(text: str) -> float:
    letters = [ch for ch in text if not ch.isspace() and not ch.isascii()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if "\uac00" <= ch <= "\ud7a3") / len(letters)


def _checked(text: str, encoding: str, warnings: list[str] | None = None) -> DecodedText:
    # Binary data is junk throughout, so the head is a fair sample (and keeps the
    # per-character check off multi-megabyte texts).
    sample = text[:JUNK_SAMPLE_CHARS]
    if sample:
        junk = sum(1 for ch in sample if _is_junk(ch))
        if junk > MAX_JUNK_SHARE * len(sample):
            raise MediaError(
                f"not text: {junk:,} of the first {len(sample):,} characters decoded as "
                f"{encoding} are control, unassigned or replacement characters "
                "(binary data posing as text?)"
            )
    return DecodedText(text, encoding, warnings or [])


def _is_junk(ch: str) -> bool:
    if ch in "\t\n\r\f\x1b":
        return False
    return ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs")


# --- shingles and MinHash ---------------------------------------------------------------

_FNV_PRIME = np.uint64(0x100000001B3)


_U64_33 = np.uint64(33)
_U64_32 = np.uint64(32)
_FMIX64_M1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX64_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_U32_16 = np.uint32(16)
_U32_13 = np.uint32(13)
_FMIX32_M1 = np.uint32(0x85EBCA6B)
_FMIX32_M2 = np.uint32(0xC2B2AE35)


def _fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (multiplication wraps modulo 2^64, as intended)."""
    values ^= values >> _U64_33
    values *= _FMIX64_M1
    values ^= values >> _U64_33
    values *= _FMIX64_M2
    values ^= values >> _U64_33
    return values


def shingle_hashes(normalized: str, size: int = SHINGLE_SIZE) -> np.ndarray:
    """32-bit hashes of the character `size`-grams, in text order (uint32).

    A text shorter than `size` is one shingle. Vectorized over code points, so a
    megabyte-long line costs milliseconds.
    """
    codes = np.frombuffer(normalized.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.uint32)
    width = min(size, len(codes))
    count = len(codes) - width + 1
    combined = codes[:count].copy()
    for offset in range(1, width):
        combined *= _FNV_PRIME
        combined += codes[offset : offset + count]
    return (_fmix64(combined) >> _U64_32).astype(np.uint32)


@cache
def permutations() -> np.ndarray:
    """datasketch's permutation parameters (a, b) for our seed, shared by every MinHash."""
    # Imported here: datasketch loads scipy, a second of start-up every other command skips.
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme=MINHASH_SCHEME).permutations


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, datasketch's pre-mix for the affine32 scheme."""
    values = values.astype(np.uint32)  # a copy: the in-place steps below must not leak
    values ^= values >> _U32_16
    values *= _FMIX32_M1
    values ^= values >> _U32_13
    values *= _FMIX32_M2
    values ^= values >> _U32_16
    return values


def _permuted(hashes: np.ndarray) -> np.ndarray:
    """(len(hashes), NUM_PERM) permuted values, exactly as datasketch's affine32
    `MinHash.update_batch` computes them (a test holds the two equal)."""
    a, b = permutations()
    return _fmix32(hashes).reshape(-1, 1) * a + b


def minhash_values(hashes: np.ndarray) -> np.ndarray:
    """The MinHash hash values (uint32[NUM_PERM]) of a set of shingle hashes."""
    result = np.full(NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint32)
    for start in range(0, len(hashes), CHUNK_SHINGLES):
        result = np.minimum(result, _permuted(hashes[start : start + CHUNK_SHINGLES]).min(axis=0))
    return result


def to_minhash(values: np.ndarray) -> datasketch.MinHash:
    from datasketch import MinHash

    return MinHash(hashvalues=values, permutations=permutations(), scheme=MINHASH_SCHEME)


def _smallest_window(n: int) -> int:
    """MIN_WINDOW, or larger on very long texts so the window count stays in budget."""
    smallest = MIN_WINDOW
    while True:
        sizes = range_windows(smallest, n)
        if sum(4 * n // size for size in sizes) <= MAX_WINDOWS or smallest >= MAX_WINDOW:
            return smallest
        smallest *= 2


def range_windows(smallest: int, n: int) -> list[int]:
    sizes = []
    size = smallest
    while size <= min(MAX_WINDOW, n // 2):
        sizes.append(size)
        size *= 2
    return sizes


def window_minhashes(ordered: np.ndarray) -> np.ndarray:
    """MinHashes of windows of W = MIN_WINDOW, 2*MIN_WINDOW, ... MAX_WINDOW shingles (W at
    most half the text) starting every W/4 shingles: uint32[n_windows, NUM_PERM].

    Block minima are computed once over W/4-shingle blocks of the smallest W and merged
    pairwise level by level, so all windows cost about one pass over the text. On texts so
    long that the windows would exceed MAX_WINDOWS, the smallest sizes are skipped: there a
    post shorter than about 3/4 of the smallest window kept is no longer guaranteed a window.
    """
    n = len(ordered)
    smallest = _smallest_window(n)
    sizes = range_windows(smallest, n)
    if not sizes:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    block = smallest // 4
    starts = np.arange(0, n, block)
    per_chunk = max(1, CHUNK_SHINGLES // block)
    parts = []
    for first in range(0, len(starts), per_chunk):
        chunk = starts[first : first + per_chunk]
        lo, hi = int(chunk[0]), min(n, int(chunk[-1]) + block)
        parts.append(np.minimum.reduceat(_permuted(ordered[lo:hi]), chunk - lo, axis=0))
    blocks = np.concatenate(parts)
    windows = []
    for _ in sizes:
        if len(blocks) < 4:
            break
        # A window is four consecutive blocks of W/4 shingles.
        windows.append(
            np.minimum(np.minimum(blocks[:-3], blocks[1:-2]), np.minimum(blocks[2:-1], blocks[3:]))
        )
        paired = len(blocks) // 2 * 2
        merged = np.minimum(blocks[0:paired:2], blocks[1:paired:2])
        blocks = merged if paired == len(blocks) else np.vstack([merged, blocks[-1:]])
    stacked = np.concatenate(windows)
    # Neighbouring windows often share every minimum; querying one of them is enough.
    keep = np.ones(len(stacked), dtype=bool)
    keep[1:] = (stacked[1:] != stacked[:-1]).any(axis=1)
    return stacked[keep]


# --- the signature ----------------------------------------------------------------------

_HEADER = struct.Struct("<4sHHHIII")
_MAGIC = b"ATX1"


@dataclass(frozen=True)
class TextSignature:
    """What matching needs of a text, and nothing it could be read back from directly."""

    minhash: np.ndarray  # uint32[NUM_PERM]
    shingles: np.ndarray  # sorted unique uint32 shingle hashes
    windows: np.ndarray  # uint32[n, NUM_PERM], window MinHashes (queries only; may be empty)
    shingle_size: int = SHINGLE_SIZE
    normalizer_version: int = NORMALIZER_VERSION

    def to_bytes(self) -> bytes:
        """Compact blob for the store (`Signal.blob`); windows are not kept."""
        header = _HEADER.pack(
            _MAGIC,
            self.normalizer_version,
            self.shingle_size,
            len(self.minhash),
            MINHASH_SEED,
            len(self.shingles),
            0,
        )
        return header + self.minhash.astype("<u4").tobytes() + self.shingles.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TextSignature:
        if len(blob) < _HEADER.size:
            raise ValueError("text signature blob is truncated")
        magic, version, size, num_perm, seed, n_shingles, _ = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise ValueError("not a text signature blob")
        if num_perm != NUM_PERM or seed != MINHASH_SEED:
            raise ValueError(f"text signature has {num_perm} permutations / seed {seed}; "
                             f"this build uses {NUM_PERM} / {MINHASH_SEED}")  # fmt: skip
        expected = _HEADER.size + 4 * (num_perm + n_shingles)
        if len(blob) != expected:
            raise ValueError(f"text signature blob is {len(blob)} bytes, expected {expected}")
        body = np.frombuffer(blob, dtype="<u4", offset=_HEADER.size).astype(np.uint32)
        return cls(
            minhash=body[:num_perm].copy(),
            shingles=body[num_perm:].copy(),
            windows=np.zeros((0, NUM_PERM), dtype=np.uint32),
            shingle_size=size,
            normalizer_version=version,
        )

    def summary(self) -> dict[str, Any]:
        """What `ansim hash --json` prints under `signals.minhash`."""
        return {
            "scheme": f"datasketch-{MINHASH_SCHEME}",
            "num_perm": len(self.minhash),
            "seed": MINHASH_SEED,
            "shingle_size": self.shingle_size,
            "normalizer_version": self.normalizer_version,
            "shingles": len(self.shingles),
            "windows": len(self.windows),
            "hashvalues": base64.b64encode(self.minhash.astype("<u4").tobytes()).decode(),
        }


@dataclass(frozen=True)
class TextSignals:
    normalized_sha256: str
    normalized_chars: int
    signature: TextSignature

    def extra(self) -> dict[str, Any]:
        """The signals under the names `MediaSignals.extra` uses."""
        return {MINHASH_SIGNAL: self.signature, NORMALIZED_SHA256_SIGNAL: self.normalized_sha256}


def text_signals(text: str, options: TextOptions = TextOptions()) -> TextSignals:
    """Signals of one text (a file's content or a crawled page's text).

    Raises TooShort when the normalized text has fewer than `options.min_chars` characters
    (this covers empty and whitespace-only text).
    """
    normalized = normalize(text)
    if len(normalized) < options.min_chars:
        what = "is empty" if not normalized else f"has {len(normalized)} characters"
        raise TooShort(
            f"text too short to match safely: after normalization it {what}, "
            f"the minimum is {options.min_chars} (configurable)"
        )
    ordered = shingle_hashes(normalized)
    shingles = np.unique(ordered)
    windows = window_minhashes(ordered) if options.windows else np.zeros((0, NUM_PERM), np.uint32)
    return TextSignals(
        normalized_sha256=hashlib.sha256(normalized.encode("utf-8")).hexdigest(),
        normalized_chars=len(normalized),
        signature=TextSignature(
            minhash=minhash_values(shingles), shingles=shingles, windows=windows
        ),
    )


def text_file_signals(
    data: bytes, options: TextOptions = TextOptions()
) -> tuple[TextSignals, DecodedText]:
    """Decode a text file's bytes and take its signals."""
    if len(data) > options.max_bytes:
        raise MediaError(f"text is {len(data):,} bytes, over the limit of {options.max_bytes:,}")
    decoded = decode_text(data)
    return text_signals(decoded.text, options), decoded


def text_media_signals(text: str, options: TextOptions = TextOptions()) -> MediaSignals:
    """A text that is not a file (a crawled page's text, `ref add --text`) as MediaSignals,
    with its UTF-8 bytes standing in for the file's."""
    signals = text_signals(text, options)
    sha256, md5, size = bytes_digests(text.encode("utf-8"))
    return MediaSignals(
        modality="text",
        sha256=sha256,
        md5=md5,
        size=size,
        mime="text/plain",
        extra=signals.extra(),
    )
