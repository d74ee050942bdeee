"""`ansim bench video`: recall and precision per repost transform, hashing speed, and
interoperability, against Meta's `vpdq` package as the peer.

References: the videos under --data (Meta's TMK sample videos: one reference per family
of takes, the other takes become "meta_variants" queries) plus slideshows synthesized
from --images with pans and zooms (half of them open with a shared black + title intro).
Queries: every reference under every transform of `video_dataset.TRANSFORMS`, the
family variants, and unrelated slideshows that open with the same intro (negatives).
Every query is decided against every reference, so the other references are distractors.

ansim: references hashed at every frame (near-duplicates dropped, centred and one-axis crop
hashes added), queries once a second (short videos at least
20 frames), time-aligned decision; "ansim-1fps" is the same with exactly one frame a
second (the like-for-like speed comparison with vpdq).
vpdq: Meta's package, both sides once a second, Meta's rule (both match shares >= 80%).
Speed: seconds of video hashed per second of wall time and per CPU second, on the same
query files, one file at a time, each system with its default threading, the systems
taking turns on each file so that both see the same load.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from ansim.benchmarks.video_dataset import (  # noqa: E402
    TRANSFORMS,
    EncodeSettings,
    SlideshowSpec,
    apply_transform,
    intro_frames,
    list_images,
    read_frames,
    synthesize_slideshow,
)
from ansim.detector.pdq import pdq_distance  # noqa: E402
from ansim.detector.signals import FrameHash  # noqa: E402
from ansim.detector.video import (  # noqa: E402
    VideoHashes,
    VideoOptions,
    hash_video,
    probe,
    reference_options,
)
from ansim.detector.video_match import VideoFrames, compare_videos, vpdq_percentages  # noqa: E402
from ansim.detector.vpdq_format import read_vpdq_file  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: E402

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
INTRO_TITLE = "A Production of Some Studio"
VPDQ_RULE_PERCENT = 80.0


@dataclass(frozen=True)
class VideoBenchConfig:
    data: Path
    out: Path
    images: Path | None = None
    vpdq_hashes: Path | None = None  # Meta's sample hashes of --data, for the interop table
    synthesized: int = 6
    synth_seconds: float = 24.0
    negatives: int = 3
    max_side: int = 480  # copies are built at most this large
    transforms: tuple[str, ...] = tuple(TRANSFORMS)
    peer: bool = True
    interop: bool = True
    seed: int = 0


@dataclass
class Video:
    path: Path
    family: str  # ground truth: queries match the reference of their family
    transform: str  # "reference" for references
    duration_s: float = 0.0


@dataclass
class SystemResult:
    name: str
    hash_seconds: float = 0.0  # wall
    cpu_seconds: float = 0.0
    video_seconds: float = 0.0
    decisions: dict[str, list[str]] = field(default_factory=dict)  # query -> matched refs
    failures: dict[str, str] = field(default_factory=dict)


# ---- dataset -------------------------------------------------------------------------


def family_of(path: Path) -> str:
    """TMK sample names start with their scene (chair-19-..., pattern-hd-...): one family."""
    return path.stem.split("-")[0]


def pick_reference(members: list[Path]) -> Path:
    """The family's original: named orig, else without bars, else the longest."""

    def rank(path: Path) -> tuple[bool, bool, float]:
        return ("orig" in path.stem, "no-bar" in path.stem, probe(path).duration_s)

    return max(members, key=rank)


def find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)


def build_dataset(config: VideoBenchConfig, progress: Progress) -> tuple[list[Video], list[Video]]:
    """References and queries (files written under config.out, reused when present)."""
    references: list[Video] = []
    queries: list[Video] = []
    families: dict[str, list[Path]] = {}
    for path in find_videos(config.data):
        families.setdefault(family_of(path), []).append(path)
    for family, members in sorted(families.items()):
        chosen = pick_reference(members)
        references.append(Video(chosen, family, "reference"))
        queries += [Video(m, family, "meta_variants") for m in members if m != chosen]

    synth_dir = config.out / "synth"
    synth_dir.mkdir(parents=True, exist_ok=True)
    photos = list_images(config.images) if config.images else []
    random.Random(config.seed).shuffle(photos)
    per_video = max(1, round(config.synth_seconds / 4))
    needed = (config.synthesized + config.negatives) * per_video
    if len(photos) < needed:
        raise ValueError(f"--images has {len(photos)} photos, {needed} needed")
    spec = SlideshowSpec(
        width=480, height=270, duration_s=config.synth_seconds, encode=EncodeSettings(fps=15)
    )
    intro = intro_frames(INTRO_TITLE, spec.width, spec.height, spec.encode.fps, seconds=6)
    task = progress.add_task("synthesizing", total=config.synthesized + config.negatives)
    for index in range(config.synthesized + config.negatives):
        negative = index >= config.synthesized
        # Parameters in the name: a rerun reuses files only when they would come out the same.
        kind = "unrelated" if negative else "synth"
        name = f"{kind}-{index:02d}-{config.synth_seconds:g}s-seed{config.seed}"
        path = synth_dir / f"{name}.mp4"
        if not path.exists():
            own = photos[index * per_video : (index + 1) * per_video]
            opening = intro if negative or index % 2 == 0 else ()
            synthesize_slideshow(own, path, spec, seed=config.seed + index, intro=opening)
        if negative:
            queries.append(Video(path, f"none-{name}", "unrelated_shared_intro"))
        else:
            references.append(Video(path, name, "reference"))
        progress.advance(task)

    copy_dir = config.out / "copies"
    copy_dir.mkdir(parents=True, exist_ok=True)
    task = progress.add_task("building copies", total=len(references) * len(config.transforms))
    for reference in references:
        decoded = None
        for name in config.transforms:
            path = copy_dir / f"{reference.path.stem}__{name}.mp4"
            if not path.exists():
                decoded = decoded or read_frames(reference.path, config.max_side)
                apply_transform(reference.path, path, TRANSFORMS[name], decoded)
            queries.append(Video(path, reference.family, name))
            progress.advance(task)
    for video in references + queries:
        video.duration_s = probe(video.path).duration_s
    return references, queries


# ---- systems -------------------------------------------------------------------------


def _as_frames(hashes: VideoHashes) -> VideoFrames:
    return VideoFrames.of(hashes)


def _vpdq_frames(path: Path, seconds_per_hash: float) -> list[FrameHash]:
    import vpdq

    features = vpdq.computeHash(str(path), seconds_per_hash=seconds_per_hash)
    return [FrameHash(f.hex, f.quality, f.frame_number, float(f.timestamp)) for f in features]


def _timed(func: Callable[[], Any]) -> tuple[Any, float, float]:
    """Result, wall seconds and CPU seconds (all threads of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _ansim_query(path: Path) -> VideoFrames:
    return _as_frames(hash_video(path, VideoOptions()))


def _ansim_exact_query(path: Path) -> VideoFrames:
    """Exactly one frame a second, as vpdq samples: the like-for-like speed comparison."""
    return _as_frames(hash_video(path, VideoOptions(min_frames=0)))


def _ansim_decides(query: VideoFrames, reference: VideoFrames) -> bool:
    found = compare_videos(query, reference)
    return found is not None and found.matched


def _vpdq_query(path: Path) -> VideoFrames:
    return VideoFrames.plain(_vpdq_frames(path, 1.0))


def _vpdq_decides(query: VideoFrames, reference: VideoFrames) -> bool:
    return min(vpdq_percentages(query.frames, reference.frames)) >= VPDQ_RULE_PERCENT


def run_systems(
    references: list[Video], queries: list[Video], peer: bool, progress: Progress
) -> tuple[list[SystemResult], float]:
    """Hash and decide every query with each system.

    The two systems hash each query back to back, in alternating order, so that both see
    the same machine load (this box is shared); wall and CPU time are both recorded.
    Returns the results and ansim's realtime factor on references (as references are hashed).
    """
    systems = {
        "ansim": (_ansim_query, _ansim_decides),
        "ansim-1fps": (_ansim_exact_query, _ansim_decides),
    }
    if peer:
        systems["vpdq"] = (_vpdq_query, _vpdq_decides)
    results = {name: SystemResult(name) for name in systems}
    banks: dict[str, dict[str, VideoFrames]] = {name: {} for name in systems}
    task = progress.add_task("hashing references", total=len(references))
    ref_options = reference_options()
    ref_wall = ref_video = 0.0
    for reference in references:
        hashes, wall, _ = _timed(lambda r=reference: hash_video(r.path, ref_options))
        ref_wall += wall
        ref_video += reference.duration_s
        banks["ansim"][reference.family] = banks["ansim-1fps"][reference.family] = _as_frames(
            hashes
        )
        if peer:
            banks["vpdq"][reference.family] = _vpdq_query(reference.path)
        progress.advance(task)
    task = progress.add_task("hashing and matching queries", total=len(queries))
    for number, query in enumerate(queries):
        order = list(systems) if number % 2 == 0 else list(reversed(systems))
        for name in order:
            hasher, decide = systems[name]
            result = results[name]
            try:
                frames, wall, cpu = _timed(lambda q=query, h=hasher: h(q.path))
            except Exception as exc:  # noqa: BLE001 - a benchmark records failures and goes on
                result.failures[str(query.path)] = str(exc)
                result.decisions[str(query.path)] = []
                continue
            result.hash_seconds += wall
            result.cpu_seconds += cpu
            result.video_seconds += query.duration_s
            result.decisions[str(query.path)] = [
                family for family, ref in banks[name].items() if decide(frames, ref)
            ]
        progress.advance(task)
    return list(results.values()), ref_video / ref_wall if ref_wall else 0.0


# ---- scoring and interop -----------------------------------------------------------------


def score(result: SystemResult, queries: list[Video]) -> dict[str, dict[str, Any]]:
    """Per transform: queries, recall, false matches, precision (over matched pairs)."""
    rows: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[Video]] = {}
    for query in queries:
        groups.setdefault(query.transform, []).append(query)
    groups["all"] = queries
    for name, members in groups.items():
        positives = [q for q in members if not q.family.startswith("none-")]
        found = sum(q.family in result.decisions.get(str(q.path), []) for q in positives)
        wrong = sum(
            sum(f != q.family for f in result.decisions.get(str(q.path), [])) for q in members
        )
        matched = found + wrong
        rows[name] = {
            "queries": len(members),
            "recall": found / len(positives) if positives else None,
            "false_matches": wrong,
            "precision": found / matched if matched else None,
        }
    return rows


def interop(config: VideoBenchConfig, progress: Progress) -> list[dict[str, Any]]:
    """Every frame hashed as vPDQ does (no crop) against Meta's sample hashes."""
    if not config.vpdq_hashes or not config.vpdq_hashes.is_dir():
        return []
    exact = VideoOptions(seconds_per_hash=0, crop_borders=False, mirror=False, max_hash_side=0)
    pairs = [
        (video, config.vpdq_hashes / f"{video.stem}.txt")
        for video in find_videos(config.data)
        if (config.vpdq_hashes / f"{video.stem}.txt").exists()
    ]
    rows = []
    task = progress.add_task("interop (every frame)", total=len(pairs))
    for video, hash_file in pairs:
        ours = hash_video(video, exact).frames
        theirs = read_vpdq_file(hash_file)
        distances = [
            pdq_distance(a.pdq, b.pdq)
            for a, b in zip(ours, theirs, strict=False)
            if b.quality >= 50
        ]
        query_percent, target_percent = vpdq_percentages(ours, theirs)
        rows.append(
            {
                "video": video.name,
                "frames": len(ours),
                "meta_frames": len(theirs),
                "mean_distance": float(np.mean(distances)) if distances else None,
                "max_distance": int(max(distances)) if distances else None,
                "query_percent": query_percent,
                "target_percent": target_percent,
                "match": min(query_percent, target_percent) >= VPDQ_RULE_PERCENT,
            }
        )
        progress.advance(task)
    return rows


# ---- report --------------------------------------------------------------------------


def run_video_benchmark(config: VideoBenchConfig, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    config.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        references, queries = build_dataset(config, progress)
        systems, reference_rtf = run_systems(references, queries, config.peer, progress)
        interop_rows = interop(config, progress) if config.interop else []
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "references": [{"file": r.path.name, "seconds": r.duration_s} for r in references],
        "queries": len(queries),
        "scores": {s.name: score(s, queries) for s in systems},
        "speed": {
            s.name: {
                "video_seconds": s.video_seconds,
                "hash_seconds": s.hash_seconds,
                "cpu_seconds": s.cpu_seconds,
                "realtime_factor": s.video_seconds / s.hash_seconds if s.hash_seconds else None,
                "video_seconds_per_cpu_second": (
                    s.video_seconds / s.cpu_seconds if s.cpu_seconds else None
                ),
            }
            for s in systems
        },
        "decisions": [
            {
                "query": q.path.name,
                "transform": q.transform,
                "expected": None if q.family.startswith("none-") else q.family,
                **{s.name: s.decisions.get(str(q.path), []) for s in systems},
            }
            for q in queries
        ],
        "ansim_reference_realtime_factor": reference_rtf,
        "failures": {s.name: s.failures for s in systems if s.failures},
        "interop": interop_rows,
        "wall_seconds": time.perf_counter() - started,
    }
    write_report(report, config.out)
    return report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    names = list(report["scores"])
    lines = [
        "# Video benchmark",
        "",
        f"{len(report['references'])} references, {report['queries']} queries, every query "
        f"decided against every reference; {report['wall_seconds']:.0f} s in all.",
        "",
        "| transform | queries | "
        + " | ".join(f"{n} recall | {n} precision | {n} false" for n in names)
        + " |",
        "| --- | ---: | " + " | ".join("---: | ---: | ---:" for _ in names) + " |",
    ]
    transforms = list(report["scores"][names[0]])
    for transform in transforms:
        cells = []
        for name in names:
            row = report["scores"][name][transform]
            cells.append(
                f"{_fmt(row['recall'])} | {_fmt(row['precision'])} | {row['false_matches']}"
            )
        queries = report["scores"][names[0]][transform]["queries"]
        lines.append(f"| {transform} | {queries} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| hashing queries at 1 frame/s | video s | wall s | CPU s | realtime (wall) "
        "| video s per CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, speed in report["speed"].items():
        lines.append(
            f"| {name} | {speed['video_seconds']:.0f} | {speed['hash_seconds']:.1f} | "
            f"{speed['cpu_seconds']:.1f} | {_fmt(speed['realtime_factor'], 1)}x | "
            f"{_fmt(speed['video_seconds_per_cpu_second'], 1)} |"
        )
    lines.append(
        f"\nansim references (every frame, near-duplicates dropped, crop hashes): "
        f"{_fmt(report['ansim_reference_realtime_factor'], 1)}x realtime (wall)."
    )
    if report["interop"]:
        lines += [
            "",
            "## vPDQ interoperability (every frame, no crop, vs Meta's sample hashes)",
            "",
            "| video | frames | mean bits | max bits | ours in Meta's % | Meta's in ours % "
            "| match |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in report["interop"]:
            lines.append(
                f"| {row['video']} | {row['frames']} | {_fmt(row['mean_distance'], 2)} | "
                f"{row['max_distance']} | {row['query_percent']:.1f} | "
                f"{row['target_percent']:.1f} | {'yes' if row['match'] else 'NO'} |"
            )
    if report["failures"]:
        lines += ["", "## Failures", ""]
        for name, failures in report["failures"].items():
            lines += [f"- {name}: {path}: {error}" for path, error in failures.items()]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    names = list(report["scores"])
    transforms = [t for t in report["scores"][names[0]] if t != "all"]
    positions = np.arange(len(transforms))
    width = 0.8 / len(names)
    figure, axis = plt.subplots(figsize=(11, 4.5))
    for offset, name in enumerate(names):
        recalls = [report["scores"][name][t]["recall"] or 0.0 for t in transforms]
        axis.bar(positions + offset * width, recalls, width, label=name)
    axis.set_xticks(positions + width * (len(names) - 1) / 2, transforms, rotation=35, ha="right")
    axis.set_ylabel("recall")
    axis.set_ylim(0, 1.05)
    axis.axhline(0.95, color="grey", linewidth=0.8, linestyle="--")
    axis.set_title("Video copies found, per transform")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(report: dict[str, Any], out: Path) -> None:
    (out / "video-bench.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "video-bench.md").write_text(render_markdown(report))
    plot(report, out / "video-bench.png")
