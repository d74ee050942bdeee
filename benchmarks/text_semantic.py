"""`ansim bench text-semantic`: does the embedding tier find reworded text the lexical
tier misses, at a threshold that keeps false matches rare?

Paraphrases are the hand-labelled question pairs of question_pair (is_duplicate 0 means
"same question"); negatives are its pairs labelled different plus random pairs of other
texts. The threshold is the smallest cosine that keeps the false-match rate on the
negatives at or below `max_false_rate`, chosen on the train file and applied to the test
file (held out).
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from ansim.benchmarks.text import load_texts
from ansim.benchmarks.text_embeddings import embed_texts
from ansim.detector.errors import MediaError
from ansim.detector.text import text_signals
from ansim.detector.text_match import TextMatchPolicy, decide_all
from ansim.indexer.text_index import BruteForceTextIndex


def _pairs(path: Path, limit: int, rng: random.Random) -> list[tuple[str, str, bool]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = [
            (r["question1"], r["question2"], r["is_duplicate"].strip() == "0")
            for r in csv.DictReader(handle)
            if r.get("question1") and r.get("question2")
        ]
    return rng.sample(rows, min(limit, len(rows)))


def _cosines(pairs: list[tuple[str, str, bool]]) -> np.ndarray:
    left = embed_texts([a for a, _, _ in pairs])
    right = embed_texts([b for _, b, _ in pairs])
    return (left * right).sum(axis=1)


def _lexical_match(a: str, b: str) -> bool:
    try:
        index = BruteForceTextIndex()
        index.add([0], [text_signals(a).signature])
        hits = index.search([text_signals(b).signature], TextMatchPolicy().search_floor)[0]
    except MediaError:
        return False
    return bool(decide_all(hits))


def run_semantic_bench(
    data_dir: Path, pairs: int = 300, random_pairs: int = 300, max_false_rate: float = 0.001
) -> dict[str, Any]:
    rng = random.Random(11)
    folder = data_dir / "question_pair"
    train = _pairs(folder / "kor_pair_train.csv", pairs, rng)
    test = _pairs(folder / "kor_Pair_test.csv", pairs, rng)
    others = [t.text for t in load_texts(data_dir) if t.source == "nsmc"]
    shuffled = [(rng.choice(others), rng.choice(others), False) for _ in range(random_pairs)]
    started = time.perf_counter()
    train_cos = _cosines(train + shuffled)
    test_cos = _cosines(test)
    embedded = 2 * (len(train) + len(shuffled) + len(test))
    seconds = time.perf_counter() - started
    labels = np.array([same for _, _, same in train + shuffled])
    negatives = np.sort(train_cos[~labels])
    allowed = int(np.floor(max_false_rate * len(negatives)))
    threshold = float(negatives[len(negatives) - 1 - allowed]) + 1e-6
    test_labels = np.array([same for _, _, same in test])
    semantic = test_cos >= threshold
    lexical = np.array([_lexical_match(a, b) for a, b, _ in test])
    positives = test_labels.sum()
    return {
        "threshold": threshold,
        "max_false_rate_on_train": max_false_rate,
        "test_paraphrases": int(positives),
        "test_different": int((~test_labels).sum()),
        "semantic_recall": float((semantic & test_labels).sum() / positives),
        "semantic_false_rate": float((semantic & ~test_labels).sum() / (~test_labels).sum()),
        "lexical_recall": float((lexical & test_labels).sum() / positives),
        "lexical_false_rate": float((lexical & ~test_labels).sum() / (~test_labels).sum()),
        "recall_added_by_semantic": float((semantic & ~lexical & test_labels).sum() / positives),
        "embeddings_per_s": embedded / seconds,
    }
