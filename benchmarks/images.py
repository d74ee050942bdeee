"""`ansim bench images`: how well ansim finds transformed copies of images, next to a peer.

From any folder of images (searched recursively, types sniffed from the bytes):
1. a seeded shuffle picks the sources (all, or --limit); a share of them become the
   references, the others are distractor sources that have no copy among the references;
2. every transform in `image_transforms.IMAGE_BENCH_TRANSFORMS` is applied to every source, into a
   temporary folder: copies of references are the positive queries, copies of distractor
   sources the negative ones (so each transform is judged on its own positives AND
   negatives);
3. each system registers the references and answers every query, timed per query:
   ansim's own path (detector.hash_file -> FaissPdqIndex, 8 dihedral variants) with
   reduced decoding, the same with full decoding, and imagehash pHash as the peer;
4. precision/recall at each system's operating threshold, ISC21 µAP, recall at a target
   precision and per-transform figures go to OUT/report.json, report.md and report.png.
The fast-decode rule (fast PDQ within 10 bits of full decoding for quality >= 80) is also
checked on every image of the folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansim.benchmarks.copy_matchers import (
    AnsimPdqMatcher,
    CopyMatcher,
    ImagehashPhashMatcher,
    QueryRejected,
)
from ansim.benchmarks.fast_decode import check_fast_decode
from ansim.benchmarks.image_transforms import ImageTransform, select_transforms, transform_rng
from ansim.benchmarks.metrics import (
    Prediction,
    micro_average_precision,
    precision_recall,
    recall_at_precision,
)
from ansim.detector.pdq import pdq_distance
from ansim.detector.sniff import IMAGE_MIMES, sniff_file
from PIL import Image
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

PEER_NAME = "imagehash_phash"


@dataclass(frozen=True)
class ImageBenchConfig:
    data: Path
    out: Path
    limit: int | None = None
    seed: int = 0
    reference_fraction: float = 0.5
    transforms: list[str] | None = None
    target_precision: float = 0.9
    check_fast_decode: bool = True


@dataclass(frozen=True)
class Query:
    key: str
    path: Path
    transform: str
    # The reference this is a copy of; None for a distractor.
    reference: str | None


@dataclass
class SystemRun:
    """What one system answered: candidates, its declared matches, refusals, time spent."""

    name: str
    description: str
    candidates: list[Prediction] = field(default_factory=list)
    # The subset of candidates the system itself reports as copies.
    predictions: list[Prediction] = field(default_factory=list)
    rejected_references: dict[str, str] = field(default_factory=dict)
    rejected_queries: dict[str, str] = field(default_factory=dict)
    query_seconds: float = 0.0
    queries: int = 0


def find_images(folder: Path) -> list[Path]:
    """Every file under `folder` whose bytes say it is an image, in a stable order."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and _is_image(p)]


def _is_image(path: Path) -> bool:
    try:
        return sniff_file(path).mime in IMAGE_MIMES
    except OSError:
        return False


def split_sources(
    images: list[Path], limit: int | None, seed: int, reference_fraction: float
) -> tuple[list[Path], list[Path]]:
    """Seeded shuffle, cut to `limit`, then (references, distractor sources)."""
    if not 0 < reference_fraction < 1:
        raise ValueError("reference_fraction must lie strictly between 0 and 1")
    if limit is not None and limit < 2:
        raise ValueError("--limit must be at least 2 (one reference and one distractor)")
    chosen = list(images)
    random.Random(seed).shuffle(chosen)
    if limit is not None:
        chosen = chosen[:limit]
    if len(chosen) < 2:
        raise ValueError("need at least 2 images (one reference and one distractor)")
    n_refs = min(len(chosen) - 1, max(1, round(len(chosen) * reference_fraction)))
    return chosen[:n_refs], chosen[n_refs:]


def add_stage(progress: Progress, description: str, total: int) -> TaskID:
    """A progress bar on a terminal; a timestamped line per stage in logs."""
    if progress.disable:
        progress.console.print(f"[{time.strftime('%H:%M:%S')}] {description} ({total})")
    return progress.add_task(description, total=total)


def make_copies(
    sources: list[tuple[str, Path, bool]],
    transforms: list[ImageTransform],
    seed: int,
    folder: Path,
    progress: Progress,
) -> tuple[list[Query], dict[str, str]]:
    """Write every transform of every (key, path, is_reference) source under `folder`."""
    queries: list[Query] = []
    unreadable: dict[str, str] = {}
    task = add_stage(progress, "making transformed copies", len(sources))
    for number, (key, path, is_reference) in enumerate(sources):
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            unreadable[key] = str(exc)
            progress.advance(task)
            continue
        for transform in transforms:
            target = folder / transform.name / f"{number:05d}{transform.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(transform.render(image, transform_rng(seed, key, transform.name)))
            queries.append(
                Query(
                    f"{transform.name}/{key}", target, transform.name, key if is_reference else None
                )
            )
        progress.advance(task)
    return queries, unreadable


def run_systems(
    matchers: list[CopyMatcher],
    references: list[tuple[str, Path]],
    queries: list[Query],
    progress: Progress,
) -> dict[str, SystemRun]:
    """Every system registers the references, then answers every query.

    The systems take turns query by query, in rotating order, so that a busy moment on a
    shared machine (or a cold file cache) slows them all alike instead of one of them.
    """
    runs = {m.name: SystemRun(m.name, m.description) for m in matchers}
    task = add_stage(progress, "registering references", len(references))
    for key, path in references:
        for matcher in matchers:
            try:
                matcher.add_reference(key, path)
            except QueryRejected as exc:
                runs[matcher.name].rejected_references[key] = str(exc)
        progress.advance(task)
    task = add_stage(progress, "querying copies", len(queries))
    for number, query in enumerate(queries):
        for turn in range(len(matchers)):
            matcher = matchers[(number + turn) % len(matchers)]
            run = runs[matcher.name]
            start = time.perf_counter()
            try:
                answers = matcher.query(query.path)
            except QueryRejected as exc:
                answers = []
                run.rejected_queries[query.key] = str(exc)
            run.query_seconds += time.perf_counter() - start
            run.queries += 1
            for answer in answers:
                prediction = Prediction(query.key, answer.reference, answer.score)
                run.candidates.append(prediction)
                if answer.is_match:
                    run.predictions.append(prediction)
        progress.advance(task)
    return runs


def score_run(
    predictions: list[Prediction],
    candidates: list[Prediction],
    ground_truth: dict[str, str],
    target_precision: float,
) -> dict[str, Any]:
    operating = precision_recall(predictions, ground_truth)
    best = recall_at_precision(candidates, ground_truth, target_precision)
    wrong = [p for p in predictions if ground_truth.get(p.query) != p.reference]
    return {
        "precision": operating.precision,
        "recall": operating.recall,
        "muap": micro_average_precision(predictions, ground_truth),
        "muap_candidates": micro_average_precision(candidates, ground_truth),
        "recall_at_precision": {
            "target": target_precision,
            "recall": best.recall,
            "precision": best.precision,
            "min_score": best.min_score,
        },
        "predictions": len(predictions),
        "false_positives": len(wrong),
        "positives": len(ground_truth),
    }


def evaluate(run: SystemRun, queries: list[Query], target_precision: float) -> dict[str, Any]:
    ground_truth = {q.key: q.reference for q in queries if q.reference is not None}
    transform_of = {q.key: q.transform for q in queries}
    result = score_run(run.predictions, run.candidates, ground_truth, target_precision)
    candidates_of: dict[str, list[Prediction]] = defaultdict(list)
    predictions_of: dict[str, list[Prediction]] = defaultdict(list)
    for p in run.candidates:
        candidates_of[transform_of[p.query]].append(p)
    for p in run.predictions:
        predictions_of[transform_of[p.query]].append(p)
    per_transform = {}
    for name in dict.fromkeys(q.transform for q in queries):
        mine = {q.key for q in queries if q.transform == name}
        scored = score_run(
            predictions_of[name],
            candidates_of[name],
            {k: v for k, v in ground_truth.items() if k in mine},
            target_precision,
        )
        scored["distractors"] = sum(
            1 for q in queries if q.transform == name and q.reference is None
        )
        scored["rejected_queries"] = sum(1 for k in run.rejected_queries if k in mine)
        per_transform[name] = scored
    result.update(
        {
            "description": run.description,
            "images_per_s": run.queries / run.query_seconds if run.query_seconds else None,
            "rejected_references": len(run.rejected_references),
            "rejected_queries": len(run.rejected_queries),
            "per_transform": per_transform,
        }
    )
    return result


def decode_path_agreement(fast: AnsimPdqMatcher, full: AnsimPdqMatcher) -> dict[str, Any]:
    """PDQ distance between reduced and full decoding on the same transformed copies."""
    distances = []
    for path, (full_pdq, full_quality) in full.query_hashes.items():
        if path in fast.query_hashes and full_quality >= 80:
            distances.append(pdq_distance(fast.query_hashes[path][0], full_pdq))
    return {
        "copies_quality_ge_80": len(distances),
        "max_distance": max(distances, default=None),
        "over_10_bits": sum(d > 10 for d in distances),
    }


def run_image_benchmark(config: ImageBenchConfig, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    transforms = select_transforms(config.transforms)
    images = find_images(config.data)
    references, distractors = split_sources(
        images, config.limit, config.seed, config.reference_fraction
    )
    key_of = {p: str(p.relative_to(config.data)) for p in images}
    sources = [(key_of[p], p, True) for p in references] + [
        (key_of[p], p, False) for p in distractors
    ]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    fast = AnsimPdqMatcher(fast_decode=True)
    full = AnsimPdqMatcher(fast_decode=False)
    peer = ImagehashPhashMatcher()
    started = time.perf_counter()
    with progress, tempfile.TemporaryDirectory(prefix="ansim-bench-images-") as tmp:
        queries, unreadable = make_copies(sources, transforms, config.seed, Path(tmp), progress)
        reference_files = [(key_of[p], p) for p in references if key_of[p] not in unreadable]
        runs = run_systems([fast, full, peer], reference_files, queries, progress)
        fast_path = None
        if config.check_fast_decode:
            task = add_stage(progress, "fast-decode rule on every image", len(images))
            fast_path = check_fast_decode(images, lambda: progress.advance(task)).summary()
    report = evaluate(runs[fast.name], queries, config.target_precision)
    full_decode = evaluate(runs[full.name], queries, config.target_precision)
    report["images_per_s_full_decode"] = full_decode["images_per_s"]
    report["full_decode"] = {
        k: full_decode[k] for k in ("precision", "recall", "muap", "images_per_s")
    }
    report["decode_path_agreement"] = decode_path_agreement(fast, full)
    peer_report = evaluate(runs[peer.name], queries, config.target_precision)
    # imagehash has no reduced decoding: its only speed is a full-decode speed.
    peer_report["images_per_s_full_decode"] = peer_report["images_per_s"]
    report["peers"] = {peer.name: peer_report}
    report["fast_decode_rule"] = fast_path
    report["dataset"] = {
        "data": str(config.data),
        "images_found": len(images),
        "limit": config.limit,
        "seed": config.seed,
        "references": len(reference_files),
        "distractor_sources": len(distractors) - sum(key_of[p] in unreadable for p in distractors),
        "unreadable_sources": unreadable,
        "transforms": {t.name: t.description for t in transforms},
        "queries": len(queries),
        "positive_queries": sum(q.reference is not None for q in queries),
        "distractor_queries": sum(q.reference is None for q in queries),
    }
    report["run"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "images_per_s = queries / time in the system's query path (hash + search + "
        "decision), one process, one thread",
    }
    return report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    peer = report["peers"][PEER_NAME]
    data = report["dataset"]
    lines = [
        "# Image copy detection benchmark",
        "",
        f"Data: `{data['data']}`: {data['references']} references, "
        f"{data['distractor_sources']} distractor sources, {len(data['transforms'])} transforms "
        f"-> {data['positive_queries']} positive and {data['distractor_queries']} distractor "
        f"queries (seed {data['seed']}, limit {data['limit']}).",
        "",
        f"- ansim: {report['description']}",
        f"- peer: {peer['description']}",
        "",
        "| system | precision | recall | µAP | recall @ P>="
        + _fmt(report["recall_at_precision"]["target"], 2)
        + " | images/s | images/s full decode |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("ansim (PDQ)", report), ("imagehash pHash", peer)):
        lines.append(
            f"| {name} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | {_fmt(r['muap'])} | "
            f"{_fmt(r['recall_at_precision']['recall'])} | {_fmt(r['images_per_s'], 1)} | "
            f"{_fmt(r['images_per_s_full_decode'], 1)} |"
        )
    lines += [
        "",
        "| transform | ansim recall | ansim µAP | ansim FP | pHash recall | pHash µAP | pHash FP |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, mine in report["per_transform"].items():
        theirs = peer["per_transform"][name]
        lines.append(
            f"| {name} | {_fmt(mine['recall'])} | {_fmt(mine['muap'])} | "
            f"{mine['false_positives']} | {_fmt(theirs['recall'])} | {_fmt(theirs['muap'])} | "
            f"{theirs['false_positives']} |"
        )
    rule = report.get("fast_decode_rule")
    if rule:
        lines += [
            "",
            f"Fast-decode rule on {rule['images']} images ({rule['quality_ge_80']} of quality "
            f">= 80, {rule['reduced']} actually decoded smaller): max distance "
            f"{rule['max_distance']} bits, {'passes' if rule['passes'] else 'FAILS'}.",
        ]
    agreement = report["decode_path_agreement"]
    lines += [
        f"Reduced vs full decoding on the transformed copies of quality >= 80: max distance "
        f"{agreement['max_distance']} bits over {agreement['copies_quality_ge_80']} copies.",
        "",
    ]
    return "\n".join(lines)


def plot_recall(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["per_transform"])
    ours = [report["per_transform"][n]["recall"] for n in names]
    peer = [report["peers"][PEER_NAME]["per_transform"][n]["recall"] for n in names]
    positions = range(len(names))
    figure, axes = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    axes.barh([p - 0.2 for p in positions], ours, height=0.4, label="ansim PDQ (dihedral)")
    axes.barh([p + 0.2 for p in positions], peer, height=0.4, label="imagehash pHash")
    axes.set_yticks(list(positions), names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("recall at the operating threshold")
    axes.set_title("Transformed copies found, per transform")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(report))
    plot_recall(report, out / "report.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ansim.benchmarks.images",
        description="Benchmark ansim's image copy detection against imagehash pHash.",
        epilog="example: python -m ansim.benchmarks.images --data ../shared/data/images "
        "--out bench-out --limit 100",
    )
    parser.add_argument("--data", type=Path, required=True, help="folder of images (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="where the reports go")
    parser.add_argument("--limit", type=int, help="use only this many source images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transforms", help="comma-separated subset of the transforms")
    parser.add_argument(
        "--no-fast-decode-check", action="store_true", help="skip the fast-decode rule check"
    )
    args = parser.parse_args(argv)
    config = ImageBenchConfig(
        data=args.data,
        out=args.out,
        limit=args.limit,
        seed=args.seed,
        transforms=args.transforms.split(",") if args.transforms else None,
        check_fast_decode=not args.no_fast_decode_check,
    )
    try:
        report = run_image_benchmark(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_report(report, config.out)
    print(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
