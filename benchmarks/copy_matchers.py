"""The systems the image benchmark compares, behind one small interface.

A matcher registers reference files, then answers "which references is this file a copy
of, and how similar?" for one query file at a time. It returns every candidate within a
wide search radius, scored so that higher is more similar; `operating_min_score` is the
score at which the system, as configured, declares a match. The wide radius lets the
benchmark draw the whole precision/recall curve, not only the operating point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from detector.errors import MediaError
from detector.hashing import HashOptions, hash_file
from detector.image import ImageOptions
from detector.pdq import DEFAULT_MATCH_DISTANCE, DEFAULT_MIN_QUALITY, PDQ_BITS
from indexer.pdq_index import FaissPdqIndex


class QueryRejected(Exception):
    """The system refused the file (unreadable, too low quality): it reports no match."""


class CopyMatcher(Protocol):
    name: str
    description: str
    operating_min_score: float

    def add_reference(self, key: str, path: Path) -> None:
        """Register one reference; raises QueryRejected if the system refuses it."""

    def query(self, path: Path) -> list[tuple[str, float]]:
        """(reference key, score) for candidates; raises QueryRejected."""


@dataclass
class AnsimPdqMatcher:
    """ansim's image path: detector.hash_file, FAISS PDQ index, 8 dihedral query variants.

    A reference matches when any of the query's dihedral hashes lies within
    `max_distance` bits of its PDQ hash; both sides need PDQ quality >= `min_quality`
    (hash_file enforces it). Score = 256 - the smallest distance over the variants.
    """

    fast_decode: bool = True
    max_distance: int = DEFAULT_MATCH_DISTANCE
    min_quality: int = DEFAULT_MIN_QUALITY
    # About twice the operating distance: wide enough to draw the precision/recall curve.
    candidate_distance: int = 64
    # query path -> (PDQ of the stored pixels, quality), kept to compare decode paths.
    query_hashes: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = "ansim_pdq" if self.fast_decode else "ansim_pdq_full_decode"
        self.description = (
            f"PDQ via detector.hash_file ({'reduced' if self.fast_decode else 'full'} decoding), "
            f"FAISS binary index, 8 dihedral variants, distance <= {self.max_distance}, "
            f"quality >= {self.min_quality}"
        )
        self.operating_min_score = float(PDQ_BITS - self.max_distance)
        self._options = HashOptions(
            image=ImageOptions(fast_decode=self.fast_decode), min_pdq_quality=self.min_quality
        )
        self._index = FaissPdqIndex()
        self._keys: list[str] = []

    def _hash(self, path: Path):
        try:
            return hash_file(path, self._options)
        except MediaError as exc:
            raise QueryRejected(str(exc)) from exc

    def add_reference(self, key: str, path: Path) -> None:
        signals = self._hash(path)
        self._index.add([len(self._keys)], [signals.pdq[0].pdq])
        self._keys.append(key)

    def query(self, path: Path) -> list[tuple[str, float]]:
        signals = self._hash(path)
        self.query_hashes[str(path)] = (signals.pdq[0].pdq, signals.pdq[0].quality)
        closest: dict[int, int] = {}
        for variant_hits in self._index.search(signals.pdq_dihedral, self.candidate_distance):
            for hit in variant_hits:
                closest[hit.entry_id] = min(hit.distance, closest.get(hit.entry_id, PDQ_BITS))
        return [(self._keys[entry], float(PDQ_BITS - d)) for entry, d in closest.items()]


PHASH_BITS = 64


@dataclass
class ImagehashPhashMatcher:
    """The peer: imagehash's pHash (64-bit DCT hash) with brute-force Hamming search.

    Threshold: Hamming distance <= 10 of 64, the cut-off commonly used with imagehash's
    default 8x8 pHash. No rotation/mirror variants: the peer as people use it.
    """

    max_distance: int = 10
    candidate_distance: int = 20  # twice the operating distance, as for PDQ
    name: str = "imagehash_phash"

    def __post_init__(self) -> None:
        import imagehash  # the peer is an optional dependency (the `bench` extra)

        self._phash = imagehash.phash
        self.description = f"imagehash.phash 64-bit, Hamming distance <= {self.max_distance}"
        self.operating_min_score = float(PHASH_BITS - self.max_distance)
        self._keys: list[str] = []
        self._codes: list[bytes] = []
        self._matrix = np.zeros((0, PHASH_BITS // 8), dtype=np.uint8)

    def _hash(self, path: Path) -> bytes:
        try:
            with Image.open(path) as image:
                bits = self._phash(image).hash.flatten()
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise QueryRejected(f"imagehash could not read the image: {exc}") from exc
        return np.packbits(bits).tobytes()

    def add_reference(self, key: str, path: Path) -> None:
        self._codes.append(self._hash(path))
        self._keys.append(key)

    def query(self, path: Path) -> list[tuple[str, float]]:
        code = np.frombuffer(self._hash(path), dtype=np.uint8)
        if len(self._matrix) != len(self._codes):
            self._matrix = np.frombuffer(b"".join(self._codes), dtype=np.uint8).reshape(
                len(self._codes), PHASH_BITS // 8
            )
        distances = np.unpackbits(self._matrix ^ code, axis=1).sum(axis=1)
        within = np.nonzero(distances <= self.candidate_distance)[0]
        return [(self._keys[i], float(PHASH_BITS - distances[i])) for i in within]
