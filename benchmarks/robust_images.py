"""The robust-image benchmark (`ansim bench robust`): hard transforms that defeat PDQ.

Three matchers run side by side on the same queries:

- `pdq`: PDQ alone, as Meta's HMA does it (8 dihedral query hashes, Hamming distance);
- `descriptor`: the learned copy-detection descriptor alone (cosine similarity);
- `full`: ansim's decision (PDQ near misses and descriptor neighbours as candidates,
  local-feature verification, thresholds calibrated at the target precision);
- `triage`: the crawl's `--image-verification triage` (candidates from PDQ and the
  descriptor only; ORB features and verification only for a query that leaves an owner
  open with evidence), on the same signals.

Data split (by folder of `../shared/data/images/`): the descriptor trains on
`bsds500/train` and `urban100`; the decision's thresholds are calibrated on `cq100` and
`kodak24`; the figures are measured on `bsds500/test`. No image is in two of those roles.
Within a pool, a seeded half of the photos are registered references and the other
half are distractors: their transformed copies are queries that must match nothing.

Metrics follow the ISC 2021 (DISC21) definitions (`benchmarks.metrics`): every matcher emits scored
(query, reference) predictions, pooled and ranked by score; micro-AP is the area under
that precision-recall curve with recall counted over queries that have a reference, and
"recall at precision p" is the best recall of any score threshold whose precision is at
least p. The full decision's own operating point (its calibrated threshold) is reported
next to that oracle figure. Timings are per item, wall and CPU, one thread per stage.
"""

from __future__ import annotations

import io
import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from ansim.benchmarks.image_transforms import EASY_TRANSFORMS, HARD_TRANSFORMS, ImageTransform
from ansim.benchmarks.metrics import Prediction, micro_average_precision, recall_at_precision
from ansim.detector.descriptor import DescriptorModel, load_descriptor_model
from ansim.detector.image import ImageOptions, load_rgb
from ansim.detector.image_decision import (
    PDQ_NO_EVIDENCE,
    VERIFICATION_BUDGET,
    Candidate,
    Decision,
    Evidence,
    Thresholds,
    calibrate,
    decide,
    judge_candidates,
)
from ansim.detector.local_verify import LocalFeatures, extract_local_features
from ansim.detector.pdq import hash_pixels_dihedral
from ansim.indexer.descriptor_index import FaissDescriptorIndex
from ansim.indexer.local_feature_index import FaissLocalFeatureIndex
from ansim.indexer.pdq_index import FaissPdqIndex
from PIL import Image

EVALUATION_FOLDERS = ("bsds500/test",)
CALIBRATION_FOLDERS = ("cq100", "kodak24")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# The same photographs in two folders (found by this module's own local-feature search
# over every folder): kept once, or a "distractor" would be a true copy of a reference.
KNOWN_DUPLICATES = {
    "kodak24/kodim03.png": "cq100/ball_caps.png",
    "kodak24/kodim05.png": "cq100/motocross.png",
    "kodak24/kodim23.png": "cq100/macaws.png",
}
METHODS = ("pdq", "descriptor", "full", "triage")
PREDICTIONS_PER_QUERY = 10


@dataclass(frozen=True)
class RobustBenchConfig:
    data_root: Path
    evaluation_folders: tuple[str, ...] = EVALUATION_FOLDERS
    calibration_folders: tuple[str, ...] = CALIBRATION_FOLDERS
    limit: int | None = None
    transforms: tuple[str, ...] = tuple(HARD_TRANSFORMS) + tuple(EASY_TRANSFORMS)
    target_precision: float = 0.999
    descriptor_neighbours: int = 10
    max_verifications: int = VERIFICATION_BUDGET
    # False: queries' ORB features without the half-size keypoints, as a crawl hashes its
    # images (references keep them).
    query_half_size_features: bool = True
    seed: int = 2021
    weights: Path | None = None


def all_transforms() -> dict[str, ImageTransform]:
    return {**HARD_TRANSFORMS, **EASY_TRANSFORMS}


# --- data -----------------------------------------------------------------------------


@dataclass
class Pool:
    """Registered references and distractors, by file path."""

    references: list[Path]
    distractors: list[Path]


def split_pool(root: Path, folders: Sequence[str], limit: int | None, seed: int) -> Pool:
    paths = sorted(
        p
        for folder in folders
        for p in (root / folder).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.relative_to(root).as_posix() not in KNOWN_DUPLICATES
    )
    if not paths:
        raise FileNotFoundError(f"no images under {root} in {', '.join(folders)}")
    random.Random(seed).shuffle(paths)
    if limit:
        paths = paths[:limit]
    half = len(paths) // 2
    return Pool(references=sorted(paths[:half]), distractors=sorted(paths[half:]))


@dataclass(frozen=True)
class Query:
    query_id: str
    transform: str
    truth: int | None  # reference entry id, None for a distractor's copy
    path: Path


def render_queries(
    pool: Pool, transform_name: str, transform: ImageTransform, seed: int, folder: Path
) -> list[Query]:
    """Write the transformed copies of every pool photo as JPEG files (quality 90)."""
    backgrounds = [Image.open(p).convert("RGB") for p in pool.distractors]
    queries = []
    sources = [(i, p) for i, p in enumerate(pool.references)] + [
        (None, p) for p in pool.distractors
    ]
    for truth, path in sources:
        rng = random.Random(f"{seed}:{transform_name}:{path.name}")
        others = [b for b, p in zip(backgrounds, pool.distractors, strict=True) if p != path]
        copy = transform(Image.open(path).convert("RGB"), rng, others).convert("RGB")
        query_id = f"{transform_name}/{path.parent.name}/{path.stem}"
        target = folder / f"{transform_name.replace('+', '_')}-{path.parent.name}-{path.stem}.jpg"
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=90)
        target.write_bytes(buffer.getvalue())
        queries.append(Query(query_id, transform_name, truth, target))
    return queries


# --- the matchers -----------------------------------------------------------------------


@dataclass
class StageClock:
    """Wall and CPU seconds spent per stage, and items seen."""

    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    items: int = 0

    def time(self, stage: str, work: Callable[[], object]) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        self.wall[stage] += time.perf_counter() - wall
        self.cpu[stage] += time.process_time() - cpu
        return result

    def per_item_ms(self) -> dict[str, dict[str, float]]:
        n = max(1, self.items)
        return {
            stage: {"wall_ms": 1000 * self.wall[stage] / n, "cpu_ms": 1000 * self.cpu[stage] / n}
            for stage in self.wall
        }


@dataclass
class ItemSignals:
    pdq: list[str]
    descriptor: np.ndarray | None
    features: LocalFeatures | None


class RobustBank:
    """An in-memory reference bank with the same indexes and decision as the store's."""

    def __init__(self, model: DescriptorModel | None, thresholds: Thresholds) -> None:
        self.model = model
        self.thresholds = thresholds
        self.pdq = FaissPdqIndex()
        self.descriptors = FaissDescriptorIndex(model.dim) if model else None
        self.features: dict[int, LocalFeatures] = {}
        self.local_index = FaissLocalFeatureIndex()

    def signals(self, path: Path, clock: StageClock, half_size: bool = True) -> ItemSignals:
        rgb = clock.time("decode", lambda: load_rgb(path, ImageOptions()))
        hashes, _quality = clock.time("pdq", lambda: hash_pixels_dihedral(rgb))
        descriptor = (
            clock.time("descriptor", lambda: self.model.describe_batch([rgb])[0])
            if self.model
            else None
        )
        features = clock.time("local_features", lambda: extract_local_features(rgb, half_size))
        return ItemSignals(hashes, descriptor, features)

    def add(self, entry_id: int, signals: ItemSignals) -> None:
        self.pdq.add([entry_id], [signals.pdq[0]])
        if self.descriptors is not None and signals.descriptor is not None:
            self.descriptors.add([entry_id], signals.descriptor[None])
        if signals.features is not None:
            self.features[entry_id] = signals.features
            self.local_index.add([entry_id], [signals.features])

    def features_of(self, owner_ids: set[int]) -> dict[int, LocalFeatures]:
        return {owner: self.features[owner] for owner in owner_ids if owner in self.features}

    def pdq_distances(self, signals: ItemSignals, clock: StageClock) -> dict[int, int]:
        hits = clock.time("pdq_search", lambda: self.pdq.search(signals.pdq, PDQ_NO_EVIDENCE))
        best: dict[int, int] = {}
        for variant_hits in hits:
            for hit in variant_hits:
                best[hit.entry_id] = min(hit.distance, best.get(hit.entry_id, 256))
        return best

    def descriptor_neighbours(
        self, signals: ItemSignals, k: int, clock: StageClock
    ) -> dict[int, float]:
        if self.descriptors is None or signals.descriptor is None:
            return {}
        hits = clock.time(
            "descriptor_search", lambda: self.descriptors.search(signals.descriptor[None], k)[0]
        )
        return {hit.entry_id: hit.similarity for hit in hits}

    def local_votes(self, signals: ItemSignals, k: int, clock: StageClock) -> dict[int, int]:
        if signals.features is None:
            return {}
        hits = clock.time("local_search", lambda: self.local_index.search([signals.features], k)[0])
        return {hit.entry_id: hit.votes for hit in hits}

    def decide(
        self, signals: ItemSignals, k: int, max_verifications: int, clock: StageClock
    ) -> list[Decision]:
        distances = self.pdq_distances(signals, clock)
        similarities = self.descriptor_neighbours(signals, k, clock)
        votes = self.local_votes(signals, k, clock)
        candidates = [
            Candidate(owner, distances.get(owner), similarities.get(owner), votes.get(owner, 0))
            for owner in sorted(set(distances) | set(similarities) | set(votes))
        ]
        return clock.time(
            "verify_and_decide",
            lambda: judge_candidates(
                candidates,
                signals.features,
                self.features_of,
                self.thresholds,
                max_verifications,
            ),
        )

    def decide_triage(
        self, signals: ItemSignals, k: int, max_verifications: int, clock: StageClock
    ) -> tuple[list[Decision], bool]:
        """The crawl's triage rule (`signal_types.orb`): no local-feature candidates; only
        owners that PDQ or the descriptor put above "no evidence" may be verified, and the
        query's ORB features are needed only when one of them is not matched without
        verification. Returns the decisions and whether ORB features were needed."""
        distances = self.pdq_distances(signals, clock)
        similarities = self.descriptor_neighbours(signals, k, clock)
        candidates = [
            Candidate(owner, distances.get(owner), similarities.get(owner))
            for owner in sorted(set(distances) | set(similarities))
        ]
        unverified = {
            c.owner_id: decide(
                Evidence(c.pdq_distance, c.descriptor_similarity), self.thresholds, c.owner_id
            )
            for c in candidates
        }
        with_evidence = [c for c in candidates if unverified[c.owner_id].score > 0.0]
        needs_features = any(not unverified[c.owner_id].matched for c in with_evidence)
        decisions = clock.time(
            "verify_and_decide",
            lambda: judge_candidates(
                with_evidence,
                signals.features if needs_features else None,
                self.features_of,
                self.thresholds,
                max_verifications,
            ),
        )
        without = [d for owner, d in unverified.items() if d.score <= 0.0]
        return decisions + without, needs_features


# --- metrics (ISC 2021 definitions, from ansim.benchmarks.metrics) ---------------------------


def prediction(query_id: str, entry_id: int, score: float) -> Prediction:
    return Prediction(query_id, str(entry_id), score)


def operating_point(
    decisions: Iterable[tuple[str, Decision]], truth: dict[str, int | None]
) -> dict[str, float]:
    """Recall and precision of the decision's own matches (its calibrated threshold)."""
    true_hits = false_hits = 0
    for query_id, decision in decisions:
        if decision.matched:
            if truth.get(query_id) == decision.owner_id:
                true_hits += 1
            else:
                false_hits += 1
    positives = sum(1 for t in truth.values() if t is not None)
    return {
        "recall": true_hits / positives if positives else 0.0,
        "precision": true_hits / (true_hits + false_hits) if true_hits + false_hits else 1.0,
        "false_matches": float(false_hits),
    }


# --- running ----------------------------------------------------------------------------


@dataclass
class PoolRun:
    """Everything measured on one pool: predictions per method, decisions, timings."""

    truth: dict[str, int | None] = field(default_factory=dict)
    transform_of: dict[str, str] = field(default_factory=dict)
    predictions: dict[str, list[Prediction]] = field(default_factory=lambda: defaultdict(list))
    decisions: list[tuple[str, Decision]] = field(default_factory=list)
    triage_decisions: list[tuple[str, Decision]] = field(default_factory=list)
    # Queries for which triage extracted ORB features (an owner left open with evidence).
    triage_with_features: int = 0
    reference_clock: StageClock = field(default_factory=StageClock)
    query_clock: StageClock = field(default_factory=StageClock)
    pdq_clock: StageClock = field(default_factory=StageClock)
    descriptor_clock: StageClock = field(default_factory=StageClock)
    triage_clock: StageClock = field(default_factory=StageClock)


def run_pool(
    pool: Pool,
    config: RobustBenchConfig,
    model: DescriptorModel | None,
    thresholds: Thresholds,
    progress: Callable[[str, int, int], None] | None = None,
) -> PoolRun:
    transforms = all_transforms()
    bank = RobustBank(model, thresholds)
    run = PoolRun()
    for entry_id, path in enumerate(pool.references):
        bank.add(entry_id, bank.signals(path, run.reference_clock))
        run.reference_clock.items += 1
    total = len(config.transforms) * (len(pool.references) + len(pool.distractors))
    done = 0
    with tempfile.TemporaryDirectory(prefix="ansim-robust-") as scratch:
        for name in config.transforms:
            queries = render_queries(pool, name, transforms[name], config.seed, Path(scratch))
            for query in queries:
                run_query(bank, query, config, run)
                query.path.unlink()
                done += 1
                if progress:
                    progress(name, done, total)
    return run


def run_query(bank: RobustBank, query: Query, config: RobustBenchConfig, run: PoolRun) -> None:
    run.truth[query.query_id] = query.truth
    run.transform_of[query.query_id] = query.transform
    # PDQ alone: what HMA does, timed on its own.
    pdq_signals = ItemSignals(
        run.pdq_clock.time("decode+pdq", lambda: _pdq_only(query.path)), None, None
    )
    distances = bank.pdq_distances(pdq_signals, run.pdq_clock)
    run.pdq_clock.items += 1
    for entry_id, distance in _top(distances, PREDICTIONS_PER_QUERY, lowest=True):
        run.predictions["pdq"].append(prediction(query.query_id, entry_id, -float(distance)))
    # The full pipeline: every signal, candidates from both indexes, verification.
    signals = bank.signals(query.path, run.query_clock, config.query_half_size_features)
    decisions = bank.decide(
        signals, config.descriptor_neighbours, config.max_verifications, run.query_clock
    )
    run.query_clock.items += 1
    for decision in sorted(decisions, key=lambda d: -d.score)[:PREDICTIONS_PER_QUERY]:
        run.predictions["full"].append(
            prediction(query.query_id, decision.owner_id, decision.score)
        )
        run.decisions.append((query.query_id, decision))
    # The crawl's triage on the same signals (its searches and verifications timed apart).
    triage, needed_features = bank.decide_triage(
        signals, config.descriptor_neighbours, config.max_verifications, run.triage_clock
    )
    run.triage_clock.items += 1
    run.triage_with_features += needed_features
    for decision in sorted(triage, key=lambda d: -d.score)[:PREDICTIONS_PER_QUERY]:
        run.predictions["triage"].append(
            prediction(query.query_id, decision.owner_id, decision.score)
        )
        run.triage_decisions.append((query.query_id, decision))
    # The descriptor alone (its cost is the decode + descriptor + search stages above).
    similarities = bank.descriptor_neighbours(signals, PREDICTIONS_PER_QUERY, run.descriptor_clock)
    run.descriptor_clock.items += 1
    for entry_id, similarity in similarities.items():
        run.predictions["descriptor"].append(prediction(query.query_id, entry_id, similarity))


def _pdq_only(path: Path) -> list[str]:
    return hash_pixels_dihedral(load_rgb(path, ImageOptions()))[0]


def _top(scores: dict[int, float], k: int, lowest: bool) -> list[tuple[int, float]]:
    ordered = sorted(scores.items(), key=lambda item: (item[1] if lowest else -item[1], item[0]))
    return ordered[:k]


def evidence_for_calibration(run: PoolRun) -> tuple[list[Evidence], list[bool]]:
    evidence = [d.evidence for _, d in run.decisions]
    labels = [run.truth.get(q) == d.owner_id for q, d in run.decisions]
    return evidence, labels


# --- report -----------------------------------------------------------------------------


def summarize(run: PoolRun, config: RobustBenchConfig, methods: Sequence[str]) -> dict:
    """Per transform and overall: µAP and recall at the target precision per method, and
    the full decision's own operating point."""
    rows = {}
    groups = {"all hard": [t for t in config.transforms if t in HARD_TRANSFORMS]}
    groups["all easy"] = [t for t in config.transforms if t in EASY_TRANSFORMS]
    for name in config.transforms:
        groups[name] = [name]
    for group, members in groups.items():
        if not members:
            continue
        queries = {q for q, t in run.transform_of.items() if t in members}
        truth = {q: run.truth[q] for q in queries}
        row: dict[str, dict[str, float]] = {}
        for method in methods:
            predictions = [p for p in run.predictions[method] if p.query in queries]
            ground_truth = {q: str(t) for q, t in truth.items() if t is not None}
            row[method] = {
                "micro_ap": micro_average_precision(predictions, ground_truth),
                "recall_at_target": recall_at_precision(
                    predictions, ground_truth, config.target_precision
                ).recall,
            }
        row["decision"] = operating_point(((q, d) for q, d in run.decisions if q in queries), truth)
        row["triage_decision"] = operating_point(
            ((q, d) for q, d in run.triage_decisions if q in queries), truth
        )
        row["queries"] = {
            "with_reference": float(sum(1 for t in truth.values() if t is not None)),
            "distractor": float(sum(1 for t in truth.values() if t is None)),
        }
        rows[group] = row
    return rows


def timing_summary(run: PoolRun) -> dict[str, object]:
    def total(clock: StageClock, key: str) -> float:
        return sum(v[key] for v in clock.per_item_ms().values())

    full_cpu = total(run.query_clock, "cpu_ms")
    # Triage pays decode, PDQ and the descriptor like the full path, ORB features only for
    # the queries that needed them, and its own searches and verifications.
    stages = run.query_clock.per_item_ms()
    features_share = run.triage_with_features / max(1, run.triage_clock.items)
    triage_cpu = (
        sum(stages[k]["cpu_ms"] for k in ("decode", "pdq", "descriptor") if k in stages)
        + features_share * stages.get("local_features", {"cpu_ms": 0.0})["cpu_ms"]
        + total(run.triage_clock, "cpu_ms")
    )
    pdq_cpu = total(run.pdq_clock, "cpu_ms")
    descriptor_stages = {
        k: v for k, v in run.query_clock.per_item_ms().items() if k in ("decode", "descriptor")
    }
    descriptor_cpu = sum(v["cpu_ms"] for v in descriptor_stages.values()) + total(
        run.descriptor_clock, "cpu_ms"
    )
    return {
        "reference_ms_per_item": run.reference_clock.per_item_ms(),
        "full_ms_per_query": run.query_clock.per_item_ms(),
        "pdq_ms_per_query": run.pdq_clock.per_item_ms(),
        "triage_ms_per_query": run.triage_clock.per_item_ms(),
        "triage_queries_with_orb_features": features_share,
        "cpu_ms_per_query": {
            "pdq": pdq_cpu,
            "descriptor": descriptor_cpu,
            "full": full_cpu,
            "triage": triage_cpu,
        },
        "wall_queries_per_second_one_thread": {
            "pdq": 1000 / max(total(run.pdq_clock, "wall_ms"), 1e-9),
            "full": 1000 / max(total(run.query_clock, "wall_ms"), 1e-9),
        },
        # Two single-threaded workers on two cores, from CPU time (load-independent).
        "projected_queries_per_second_2_cores": {
            "pdq": 2000 / max(pdq_cpu, 1e-9),
            "descriptor": 2000 / max(descriptor_cpu, 1e-9),
            "full": 2000 / max(full_cpu, 1e-9),
            "triage": 2000 / max(triage_cpu, 1e-9),
        },
    }


def write_report(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "robust_images.json").write_text(json.dumps(result, indent=2, default=str))
    (out_dir / "robust_images.md").write_text(markdown_table(result))
    plot_recall(result, out_dir / "robust_images_recall.png")


def markdown_table(result: dict) -> str:
    target = result["config"]["target_precision"]
    lines = [
        f"Recall at precision >= {target} (oracle threshold) and µAP; "
        "`decision` = the full pipeline at its calibrated threshold (recall / precision).",
        "",
        "| transform | PDQ R@P | PDQ µAP | descriptor R@P | descriptor µAP "
        "| full R@P | full µAP | triage R@P | triage µAP | decision recall | decision precision "
        "| triage recall | triage precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group, row in result["evaluation"].items():
        cells = [group]
        for method in METHODS:
            if method in row:
                cells += [
                    f"{row[method]['recall_at_target']:.3f}",
                    f"{row[method]['micro_ap']:.3f}",
                ]
            else:
                cells += ["-", "-"]
        for decision in ("decision", "triage_decision"):
            cells += [f"{row[decision]['recall']:.3f}", f"{row[decision]['precision']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_recall(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in result["evaluation"] if not g.startswith("all")]
    x = np.arange(len(groups))
    fig, axis = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(METHODS)
    for position, method in enumerate(METHODS):
        values = [
            result["evaluation"][g].get(method, {}).get("recall_at_target", 0.0) for g in groups
        ]
        axis.bar(x + (position - (len(METHODS) - 1) / 2) * width, values, width=width, label=method)
    axis.set_xticks(x, groups, rotation=45, ha="right")
    axis.set_ylabel(f"recall at precision >= {result['config']['target_precision']}")
    axis.set_ylim(0, 1.05)
    axis.legend(ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_benchmark(
    config: RobustBenchConfig,
    calibrate_first: bool,
    thresholds_path: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Calibrate on the calibration pool (optional), then measure on the evaluation pool."""
    _single_threaded()
    model = load_descriptor_model(config.weights)
    methods = [m for m in METHODS if m != "descriptor" or model is not None]
    # Paths are recorded by their last part only: reports are committed under
    # benchmarks/results/ and a machine's folder layout means nothing on another machine.
    result: dict[str, object] = {
        "config": {k: v.name if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "descriptor_model": model.model_id if model else None,
    }
    if calibrate_first:
        pool = split_pool(config.data_root, config.calibration_folders, config.limit, config.seed)
        run = run_pool(pool, config, model, Thresholds(), _phase(progress, "calibrate"))
        evidence, labels = evidence_for_calibration(run)
        thresholds = calibrate(
            evidence,
            labels,
            config.target_precision,
            model.model_id if model else "",
            calibrated_on=", ".join(config.calibration_folders),
        )
        thresholds.save(thresholds_path)
        result["calibration"] = asdict(thresholds)
    thresholds = Thresholds.load(thresholds_path)
    pool = split_pool(config.data_root, config.evaluation_folders, config.limit, config.seed)
    run = run_pool(pool, config, model, thresholds, _phase(progress, "evaluate"))
    result["thresholds"] = asdict(thresholds)
    result["evaluation"] = summarize(run, config, methods)
    result["timing"] = timing_summary(run)
    result["pools"] = {
        "evaluation": {
            "folders": list(config.evaluation_folders),
            "references": len(pool.references),
            "distractors": len(pool.distractors),
        }
    }
    return result


def _phase(
    progress: Callable[[str, int, int], None] | None, phase: str
) -> Callable[[str, int, int], None] | None:
    if progress is None:
        return None
    return lambda name, done, total: progress(f"{phase}: {name}", done, total)


def _single_threaded() -> None:
    """One thread per library: on a shared 2-core box, thread pools only fight."""
    import faiss

    faiss.omp_set_num_threads(1)
    cv2.setNumThreads(1)
