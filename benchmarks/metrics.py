"""Copy-detection metrics as the Image Similarity Challenge 2021 (ISC21) defines them.

A run yields predictions (query, reference, score), higher score = more similar. Ground
truth maps each query that has a copy in the references to that one reference; the
other queries are distractors.

micro average precision (µAP): pool every prediction of every query, rank them by score
(descending), and sum precision x recall gained over the ranking:

    µAP = sum_k (R_k - R_{k-1}) * P_k

where P_k and R_k are precision and recall of the top k predictions, and recall is
normalised by the number of queries that have a ground-truth match (not by the number of
predictions, so predictions never made count as misses). Equal scores are ranked with the
wrong predictions first, as ISC21 does, so that a tie never flatters a system.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    query: str
    reference: str
    score: float


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Precision and recall after each prediction in ranked order, and its score."""

    precisions: np.ndarray
    recalls: np.ndarray
    scores: np.ndarray
    correct: np.ndarray


@dataclass(frozen=True)
class OperatingPoint:
    # None when no prediction was made at all (precision is undefined then).
    precision: float | None
    recall: float
    # Keep predictions scoring >= this to get that precision and recall (None: unreachable).
    min_score: float | None


def check_no_duplicates(predictions: Iterable[Prediction]) -> None:
    seen: set[tuple[str, str]] = set()
    for p in predictions:
        pair = (p.query, p.reference)
        if pair in seen:
            raise ValueError(
                f"duplicate prediction for query {p.query!r}, reference {p.reference!r}"
            )
        seen.add(pair)


def precision_recall_curve(
    predictions: list[Prediction], ground_truth: Mapping[str, str]
) -> PrecisionRecallCurve:
    """Rank pooled predictions by descending score, wrong ones first among equal scores."""
    check_no_duplicates(predictions)
    positives = len(ground_truth)
    scores = np.array([p.score for p in predictions], dtype=np.float64)
    correct = np.array([ground_truth.get(p.query) == p.reference for p in predictions], dtype=bool)
    # lexsort sorts by the last key first: score descending, then correct (False) first.
    order = np.lexsort((correct, -scores))
    scores, correct = scores[order], correct[order]
    true_positives = np.cumsum(correct)
    precisions = true_positives / np.arange(1, len(correct) + 1)
    recalls = true_positives / positives if positives else np.zeros(len(correct))
    return PrecisionRecallCurve(precisions, recalls, scores, correct)


def micro_average_precision(
    predictions: list[Prediction], ground_truth: Mapping[str, str]
) -> float:
    """ISC21 µAP; 0.0 when there are no predictions or no queries with a match."""
    if not predictions or not ground_truth:
        return 0.0
    curve = precision_recall_curve(predictions, ground_truth)
    recall_gain = np.diff(curve.recalls, prepend=0.0)
    return float((recall_gain * curve.precisions).sum())


def precision_recall(
    predictions: list[Prediction], ground_truth: Mapping[str, str]
) -> OperatingPoint:
    """Precision and recall of a thresholded run: all its predictions count as claims."""
    check_no_duplicates(predictions)
    correct = sum(ground_truth.get(p.query) == p.reference for p in predictions)
    precision = correct / len(predictions) if predictions else None
    recall = correct / len(ground_truth) if ground_truth else 0.0
    min_score = min((p.score for p in predictions), default=None)
    return OperatingPoint(precision, recall, min_score)


def recall_at_precision(
    predictions: list[Prediction], ground_truth: Mapping[str, str], target_precision: float
) -> OperatingPoint:
    """The highest recall of any score threshold whose precision is >= target_precision.

    Only thresholds that can actually be set are considered: the cut falls after the last
    prediction of a score, never between equal scores.
    """
    if not predictions or not ground_truth:
        return OperatingPoint(None, 0.0, None)
    curve = precision_recall_curve(predictions, ground_truth)
    last_of_score = np.append(curve.scores[1:] != curve.scores[:-1], True)
    candidates = np.nonzero(last_of_score & (curve.precisions >= target_precision))[0]
    if candidates.size == 0:
        return OperatingPoint(None, 0.0, None)
    best = candidates[np.argmax(curve.recalls[candidates])]
    return OperatingPoint(
        float(curve.precisions[best]), float(curve.recalls[best]), float(curve.scores[best])
    )
