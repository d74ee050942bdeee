"""The descriptor bank at scale on the real queries of `ansim bench robust`.

The robust benchmark's evaluation pool (bsds500/test, its seed and split) gives the
reference photos and the query copies (every transform of every pool photo, as the
benchmark renders them). Their descriptors, from the installed model, are planted among
`distractors` synthetic descriptors, clustered around the pool's own descriptors (each a
pool photo's or query's descriptor plus noise: neighbours that compete with the true
reference in a short list, the hard case for the IVF's cells), and half isotropic.

The bank's index (`TieredDescriptorIndex`, compressed at this size) is held to the exact
index (FAISS flat) over the same vectors: of the exact index's top-k at or above the
decision's floor and at or above its match similarity, the share the bank returns, and
whether every reference hit (what the robust decision sees: the distractors are not
photos) comes back with the same similarity. Resident bytes per entry are the IVF's.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# Distractors around the pool's descriptors: this share, the rest isotropic.
CLUSTERED_SHARE = 0.5
# Their noise: similarity to their centre about 0.55-0.85 (the 0.3 floor keeps them as
# candidates; the 0.9 match similarity does not).
NOISE_SCALE = (0.6, 1.5)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def pool_descriptors(images: Path, photos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference descriptors, query descriptors) of the robust benchmark's evaluation
    pool, limited to `photos` photos (half references, half distractor photos)."""
    from ansim.benchmarks.robust_images import (
        EVALUATION_FOLDERS,
        RobustBenchConfig,
        all_transforms,
        render_queries,
        split_pool,
    )
    from ansim.detector.descriptor import load_descriptor_model
    from ansim.detector.image import ImageOptions, load_rgb

    model = load_descriptor_model()
    if model is None:
        raise ValueError("the descriptor model (its weights file) is not installed")
    config = RobustBenchConfig(data_root=images, limit=photos)
    pool = split_pool(images, EVALUATION_FOLDERS, config.limit, config.seed)

    def describe(paths: list[Path]) -> np.ndarray:
        # Decoded as the robust benchmark decodes them; a few at a time (memory).
        return np.concatenate(
            [
                model.describe_batch([load_rgb(p, ImageOptions()) for p in paths[at : at + 16]])
                for at in range(0, len(paths), 16)
            ]
        )

    references = describe(pool.references)
    queries = []
    transforms = all_transforms()
    with tempfile.TemporaryDirectory(prefix="ansim-descriptors-") as scratch:
        for name in config.transforms:
            rendered = render_queries(pool, name, transforms[name], config.seed, Path(scratch))
            queries.append(describe([query.path for query in rendered]))
            for query in rendered:
                query.path.unlink()
    return references.astype(np.float32), np.concatenate(queries).astype(np.float32)


def distractor_descriptors(
    count: int, centres: np.ndarray, seed: int, chunk: int = 100_000, out: np.ndarray | None = None
) -> np.ndarray:
    """`count` synthetic descriptors: half around `centres` (the pool's), half isotropic;
    written into `out` when given (a view of a larger array: no second copy at 10M)."""
    rng = np.random.default_rng(seed)
    dim = centres.shape[1]
    if out is None:
        out = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        clustered = rng.random(size) < CLUSTERED_SHARE
        vectors = rng.normal(size=(size, dim)) / np.sqrt(dim)
        scale = rng.uniform(*NOISE_SCALE, (size, 1))
        picked = centres[rng.integers(0, len(centres), size)]
        vectors[clustered] = picked[clustered] + scale[clustered] * vectors[clustered]
        out[start : start + size] = _unit(vectors)
    return out


def robust_descriptor_step(
    distractors: int, images: Path, photos: int, seed: int
) -> dict[str, Any]:
    from ansim.detector.image_decision import Thresholds
    from ansim.indexer.descriptor_index import FaissDescriptorIndex
    from ansim.indexer.tiered_descriptor_index import TieredDescriptorIndex

    thresholds = Thresholds.load()
    k = 10  # RobustBenchConfig.descriptor_neighbours
    started = time.perf_counter()
    references, queries = pool_descriptors(images, photos, seed)
    described = time.perf_counter() - started
    # References first (ids 1..), then the distractors; the bank adds them as one batch.
    ids = np.arange(1, len(references) + distractors + 1, dtype=np.int64)
    vectors = np.empty((len(ids), references.shape[1]), dtype=np.float32)
    vectors[: len(references)] = references
    centres = np.concatenate([references, queries])
    distractor_descriptors(distractors, centres, seed, out=vectors[len(references) :])
    exact = FaissDescriptorIndex(vectors.shape[1])
    exact.add(ids, vectors)
    started = time.perf_counter()
    bank = TieredDescriptorIndex(vectors.shape[1])
    bank.add(ids, vectors)
    built = time.perf_counter() - started
    del vectors
    if not bank.compressed:
        raise ValueError(f"{len(ids):,} entries: below the IVF threshold ({bank.ivf_from:,})")
    floor, match = thresholds.descriptor_floor, thresholds.descriptor_min_similarity
    want = exact.search(queries, k, floor)
    wall, cpu = time.perf_counter(), time.process_time()
    got = bank.search(queries, k, floor)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    def recall(minimum: float) -> tuple[int, float | None]:
        wanted = found = 0
        for w, g in zip(want, got, strict=True):
            returned = {h.entry_id for h in g}
            kept = [h.entry_id for h in w if h.similarity >= minimum]
            wanted += len(kept)
            found += len(set(kept) & returned)
        return wanted, round(found / wanted, 4) if wanted else None

    def reference_hits(hits: list) -> set[tuple[int, float]]:  # type: ignore[type-arg]
        return {(h.entry_id, round(h.similarity, 5)) for h in hits if h.entry_id <= len(references)}

    same = sum(reference_hits(w) == reference_hits(g) for w, g in zip(want, got, strict=True))
    # Where they differ, how: a similarity's last decimal, a tie at the k-th place, or a
    # reference the bank missed.
    differing = [
        {
            "query": number,
            "exact_only": sorted(reference_hits(w) - reference_hits(g)),
            "bank_only": sorted(reference_hits(g) - reference_hits(w)),
            "exact_kth_similarity": round(w[-1].similarity, 5) if w else None,
        }
        for number, (w, g) in enumerate(zip(want, got, strict=True))
        if reference_hits(w) != reference_hits(g)
    ][:5]
    floor_wanted, floor_recall = recall(floor)
    match_wanted, match_recall = recall(match)
    inner = bank.inner
    return {
        "descriptor_distractors": distractors,
        "references": len(references),
        "queries": len(queries),
        "describe_s": round(described, 1),
        "build_s": round(built, 1),
        "cells": inner.cells,
        "queries_per_s": round(len(queries) / wall),
        "queries_per_cpu_s": round(len(queries) / max(cpu, 1e-9)),
        f"exact_top{k}_at_floor": floor_wanted,
        "candidate_recall_at_floor": floor_recall,
        f"exact_top{k}_at_match": match_wanted,
        "candidate_recall_at_match": match_recall,
        "queries_with_same_reference_hits": same,
        "differing_reference_hits": differing,
        "resident_bytes_per_entry": round(inner.memory_bytes() / len(ids), 1),
    }
