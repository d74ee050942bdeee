"""Stored descriptors: float32 for references, int8 codes in the crawl history."""

from __future__ import annotations

import numpy as np
from ansim.detector.descriptor import DESCRIPTOR_DIM, Descriptor, vector_from_blob


def _unit_vectors(count: int) -> np.ndarray:
    vectors = np.random.default_rng(18).normal(size=(count, DESCRIPTOR_DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_int8_codes_keep_cosine_similarity_within_half_a_hundredth() -> None:
    vectors = _unit_vectors(200)
    decoded = np.stack(
        [vector_from_blob(Descriptor(v, "m", quantised=True).to_blob()) for v in vectors]
    )
    assert all(len(Descriptor(v, "m", quantised=True).to_blob()) == DESCRIPTOR_DIM for v in vectors)
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1.0, atol=1e-5)
    exact, approximate = vectors @ vectors.T, decoded @ decoded.T
    # Real descriptors move by <= 0.001 (bench photos); random ones, with flatter peaks, more.
    assert float(np.abs(exact - approximate).max()) < 5e-3
    # A near copy of each vector, stored as int8, still finds its original first.
    noise = np.random.default_rng(19).normal(size=vectors.shape).astype(np.float32) * 0.05
    copies = vectors + noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    stored = np.stack(
        [vector_from_blob(Descriptor(c, "m", quantised=True).to_blob()) for c in copies]
    )
    assert np.array_equal((stored @ vectors.T).argmax(axis=1), np.arange(len(vectors)))


def test_float32_blobs_decode_as_stored() -> None:
    vector = _unit_vectors(1)[0]
    blob = Descriptor(vector, "m").to_blob()
    assert len(blob) == 4 * DESCRIPTOR_DIM
    assert np.array_equal(vector_from_blob(blob), vector)
    assert len(vector_from_blob(np.zeros(64, np.float32).tobytes())) == 64  # another model's
