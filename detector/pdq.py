"""PDQ hashes: computing them with Meta's reference algorithm (pdqhash) and comparing them.

A hash travels as 64 hex characters (Meta's format). Distances are Hamming distances in bits.
"""

from __future__ import annotations

import numpy as np
import pdqhash

PDQ_BITS = 256
PDQ_BYTES = PDQ_BITS // 8
# Meta's recommended defaults for a PDQ match.
DEFAULT_MATCH_DISTANCE = 31
DEFAULT_MIN_QUALITY = 50


def bits_to_hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hex_to_bytes(pdq_hex: str) -> bytes:
    """Parse and validate a PDQ hex string (raises ValueError on anything but 64 hex digits)."""
    text = pdq_hex.strip().lower()
    if len(text) != PDQ_BYTES * 2:
        raise ValueError(f"a PDQ hash has 64 hex digits, got {len(text)}")
    return bytes.fromhex(text)


def pdq_distance(a_hex: str, b_hex: str) -> int:
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def hash_pixels(rgb: np.ndarray) -> tuple[str, int]:
    """PDQ hash and quality (0-100) of an RGB uint8 array of shape (h, w, 3)."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(bits), int(quality)


def hash_pixels_dihedral(rgb: np.ndarray) -> tuple[list[str], int]:
    """The 8 dihedral hashes (rotations and mirrors) and the quality, in pdqhash's order."""
    all_bits, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [bits_to_hex(bits) for bits in all_bits], int(quality)
