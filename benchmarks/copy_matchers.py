"""The systems the image benchmark compares, behind one small interface.

A matcher registers reference files, then answers "which references is this file a copy
of, and how similar?" for one query file at a time. It returns every candidate within a
wide search radius, scored in [0, 1] (higher = more similar), each marked with the
system's own decision at its operating threshold. The wide radius lets the benchmark draw
the whole precision/recall curve, not only the operating point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from ansim.detector.decision import MatchRules, best_pdq_evidence, pdq_image_decision
from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.detector.image import ImageOptions
from ansim.detector.pdq import PDQ_BITS
from ansim.detector.signals import MediaSignals
from ansim.indexer.pdq_index import FaissPdqIndex
from ansim.signal_types.hashing import hash_file
from PIL import Image, UnidentifiedImageError


class QueryRejected(Exception):
    """The system refused the file (unreadable, too low quality): it reports no match."""


@dataclass(frozen=True)
class Candidate:
    reference: str
    score: float
    # The system's own verdict: would it report this pair as a copy?
    is_match: bool


class CopyMatcher(Protocol):
    name: str
    description: str

    def add_reference(self, key: str, path: Path) -> None:
        """Register one reference; raises QueryRejected if the system refuses it."""

    def query(self, path: Path) -> list[Candidate]:
        """Candidates for one file; raises QueryRejected."""


@dataclass
class AnsimPdqMatcher:
    """ansim's image path, as `ansim scan` runs it, minus the store.

    detector.hash_file (sniffing, digests, decoding, PDQ + 8 dihedral variants, refusing
    quality < 50) -> indexer.FaissPdqIndex range search -> detector.decision: the closest
    variant per reference (`best_pdq_evidence`) and the match rule (`pdq_image_decision`,
    distance <= 31). Score = Decision.score's scale, 1 - distance / 256.
    """

    fast_decode: bool = True
    rules: MatchRules = MatchRules()
    # 3/8 of the bits (as for the peer): far past the operating point, so the
    # precision/recall curve shows where precision starts to fall.
    candidate_distance: int = 96
    # query path -> (PDQ of the stored pixels, quality), kept to compare decode paths.
    query_hashes: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = "ansim_pdq" if self.fast_decode else "ansim_pdq_full_decode"
        self.description = (
            f"PDQ via detector.hash_file ({'reduced' if self.fast_decode else 'full'} decoding), "
            f"FAISS binary index, 8 dihedral variants, distance <= {self.rules.pdq_max_distance}, "
            f"quality >= {self.rules.pdq_min_quality}; score = 1 - distance/256"
        )
        self._options = HashOptions(
            image=ImageOptions(fast_decode=self.fast_decode),
            min_pdq_quality=self.rules.pdq_min_quality,
        )
        self._index = FaissPdqIndex()
        self._keys: list[str] = []
        # Entry ids are positions in _keys; each reference owns exactly its one entry.
        self._owner_of_entry: dict[int, int] = {}

    def _hash(self, path: Path) -> MediaSignals:
        try:
            return hash_file(path, self._options)
        except MediaError as exc:
            raise QueryRejected(str(exc)) from exc

    def add_reference(self, key: str, path: Path) -> None:
        signals = self._hash(path)
        entry = len(self._keys)
        self._index.add([entry], [signals.pdq[0].pdq])
        self._owner_of_entry[entry] = entry
        self._keys.append(key)

    def query(self, path: Path) -> list[Candidate]:
        signals = self._hash(path)
        self.query_hashes[str(path)] = (signals.pdq[0].pdq, signals.pdq[0].quality)
        hits = self._index.search(signals.pdq_dihedral, self.candidate_distance)
        evidence = best_pdq_evidence(
            [[(hit.entry_id, hit.distance) for hit in variant] for variant in hits],
            self._owner_of_entry,
        )
        return [
            Candidate(
                self._keys[e.owner_id],
                1.0 - e.distance / PDQ_BITS,
                pdq_image_decision(e, self.rules) is not None,
            )
            for e in evidence.values()
        ]


PHASH_BITS = 64


@dataclass
class ImagehashPhashMatcher:
    """The peer: imagehash's pHash (64-bit DCT hash) with brute-force Hamming search.

    Threshold: Hamming distance <= 10 of 64, the cut-off commonly used with imagehash's
    default 8x8 pHash. No rotation/mirror variants: the peer as people use it.
    """

    max_distance: int = 10
    candidate_distance: int = 24  # 3/8 of the bits, as for PDQ
    name: str = "imagehash_phash"

    def __post_init__(self) -> None:
        import imagehash  # the peer is an optional dependency (the `bench` extra)

        self._phash = imagehash.phash
        self.description = (
            f"imagehash.phash 64-bit, Hamming distance <= {self.max_distance}; "
            "score = 1 - distance/64"
        )
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

    def query(self, path: Path) -> list[Candidate]:
        code = np.frombuffer(self._hash(path), dtype=np.uint8)
        if len(self._matrix) != len(self._codes):
            self._matrix = np.frombuffer(b"".join(self._codes), dtype=np.uint8).reshape(
                len(self._codes), PHASH_BITS // 8
            )
        distances = np.unpackbits(self._matrix ^ code, axis=1).sum(axis=1)
        within = np.nonzero(distances <= self.candidate_distance)[0]
        return [
            Candidate(
                self._keys[i],
                1.0 - float(distances[i]) / PHASH_BITS,
                bool(distances[i] <= self.max_distance),
            )
            for i in within
        ]
