"""`ansim bench ...`: benchmarks that measure precision and speed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    Engine,
    ImageVerification,
    JsonFlag,
    RayAddress,
    checked_engine,
    emit_json,
    err,
    out,
    print_error,
    progress_bar,
    refusals,
    shared_data_dir,
    shared_data_root,
)
from ansim.detector.errors import MediaError

bench_app = typer.Typer(help="Benchmarks that measure precision and speed.", no_args_is_help=True)


@bench_app.command("video")
@refusals
def bench_video(
    data: Annotated[Path, typer.Option(help="Reference videos (e.g. Meta's TMK samples).")],
    out: Annotated[Path, typer.Option(help="Folder for copies and the report.")],
    images: Annotated[
        Path | None, typer.Option(help="Photos to synthesize slideshows from.")
    ] = None,
    vpdq_hashes: Annotated[
        Path | None, typer.Option(help="Meta's vPDQ hashes of --data, for the interop table.")
    ] = None,
    synthesized: Annotated[int, typer.Option(help="Slideshow references to make.")] = 6,
    seconds: Annotated[float, typer.Option(help="Length of each slideshow.")] = 24.0,
    negatives: Annotated[int, typer.Option(help="Unrelated videos sharing an intro.")] = 3,
    seed: Annotated[
        int, typer.Option(help="Picks the photos and motions (another seed: unseen videos).")
    ] = 0,
    peer: Annotated[bool, typer.Option(help="Also run Meta's vpdq package.")] = True,
    interop: Annotated[bool, typer.Option(help="Hash --data at every frame vs Meta.")] = True,
    json_out: JsonFlag = False,
) -> None:
    """Video recall/precision per transform, hashing speed and vPDQ interop, vs Meta's vpdq.

    Example: `ansim bench video --data ../shared/data/threatexchange/tmk/sample-videos
    --out bench-out/video` (about 10 minutes on 2 cores; needs `pip install vpdq`, which
    builds against Debian's libav*-dev packages, for the peer).
    """
    from ansim.benchmarks.video import VideoBenchConfig, run_video_benchmark

    if not data.is_dir():
        raise CaseworkError(f"--data {data} is not a folder")
    if peer:
        try:
            import vpdq  # noqa: F401
        except ImportError as exc:
            raise CaseworkError(
                "the peer needs Meta's vpdq package: `make bench-video-deps`, or --no-peer"
            ) from exc
    shared = shared_data_root()
    config = VideoBenchConfig(
        data=data,
        out=out,
        images=images or shared / "images",
        vpdq_hashes=vpdq_hashes or shared / "threatexchange" / "vpdq" / "sample-hashes",
        synthesized=synthesized,
        synth_seconds=seconds,
        negatives=negatives,
        seed=seed,
        peer=peer,
        interop=interop,
    )
    try:
        report = run_video_benchmark(config, err)
    except ValueError as exc:
        raise CaseworkError(str(exc)) from exc
    if json_out:
        emit_json(report)
    else:
        out_text = (out / "video-bench.md").read_text()
        sys.stdout.write(out_text)
        files = ", ".join(str(out / f"video-bench.{ext}") for ext in ("md", "json", "png"))
        err.print(f"report: {files}")


@bench_app.command("text")
def bench_text(
    data: Annotated[Path, typer.Option("--data", help="Folder of texts (shared/data/text).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report and JSON.")],
    references: Annotated[int, typer.Option(help="References to sample.")] = 1000,
    max_distractors: Annotated[
        int | None, typer.Option(help="Cap on distractors (default: all other texts).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 7,
    calibrate: Annotated[
        bool, typer.Option(help="Use the calibration sources and sweep the thresholds.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Recall per evasion, precision against distractors, signatures/s and queries/s for
    text. Exit 1 when a target is missed.

    Example: `ansim bench text --data ../shared/data/text --out bench-out/text`
    """
    from ansim.benchmarks import text as text_bench

    command = "ansim bench text " + " ".join(sys.argv[3:])
    result, sweep = text_bench.run_text_bench(data, references, max_distractors, seed, calibrate)
    report = text_bench.write_outputs(out_dir, result, sweep, command)
    if json_out:
        emit_json(json.loads((out_dir / "text_bench.json").read_text()))
    else:
        out.print(report.read_text(), highlight=False, markup=False)
    missed = text_bench.failure_summary(result)
    raise typer.Exit(1 if missed or result.precision < 0.999 else 0)


@bench_app.command("text-semantic")
def bench_text_semantic(
    data: Annotated[Path, typer.Option("--data", help="Folder of texts (shared/data/text).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the JSON result.")],
    pairs: Annotated[int, typer.Option(help="Question pairs per file (train, test).")] = 300,
    json_out: JsonFlag = False,
) -> None:
    """The optional embedding tier (extra `semantic`) on hand-labelled Korean paraphrases,
    compared with the lexical tier on the same pairs.

    Example: `ansim bench text-semantic --data ../shared/data/text --out bench-out/text`
    """
    from ansim.benchmarks.text_embeddings import SemanticUnavailable
    from ansim.benchmarks.text_semantic import run_semantic_bench

    try:
        result = run_semantic_bench(data, pairs)
    except SemanticUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "text_semantic.json").write_text(json.dumps(result, indent=2))
    if json_out:
        emit_json(result)
    else:
        for key, value in result.items():
            out.print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


@bench_app.command("images")
def bench_images(
    data: Annotated[Path, typer.Option(help="Folder of images (searched recursively).")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where report.json, report.md, report.png go.")
    ],
    limit: Annotated[
        int | None, typer.Option(help="Use only this many images (seeded sample).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the transforms.")] = 0,
    transforms: Annotated[
        str | None, typer.Option(help="Comma-separated subset of transforms (default: all).")
    ] = None,
    fast_decode_check: Annotated[
        bool, typer.Option(help="Also check the fast-decode rule on every image of --data.")
    ] = True,
    json_out: JsonFlag = False,
) -> None:
    """Measure how well ansim finds transformed copies of images, next to imagehash pHash.

    Half of the (sampled) images become references, the rest distractors; every transform
    of every image is queried. Prints precision, recall and ISC21 µAP overall and per
    transform, and images/s with and without reduced decoding.

    Example: `ansim bench images --data ../shared/data/images --out bench-out/images --limit 100`
    """
    from ansim.benchmarks.images import ImageBenchConfig, render_markdown, run_image_benchmark
    from ansim.benchmarks.images import write_report as write_image_report

    config = ImageBenchConfig(
        data=data,
        out=out_dir,
        limit=limit,
        seed=seed,
        transforms=transforms.split(",") if transforms else None,
        check_fast_decode=fast_decode_check,
    )
    try:
        report = run_image_benchmark(config, err)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except ImportError as exc:
        err.print(
            f"[red]error:[/red] the peer needs imagehash: pip install 'ansim[bench]' ({exc})",
            highlight=False,
        )
        raise typer.Exit(2) from exc
    write_image_report(report, out_dir)
    if json_out:
        emit_json(report)
    else:
        out.print(render_markdown(report), highlight=False, markup=False)
        out.print(f"written: {out_dir}/report.json, report.md, report.png", highlight=False)


@bench_app.command("crawl")
@refusals
def bench_crawl(
    out_dir: Annotated[Path, typer.Option("--out", help="Site, scratch home and results.")],
    workers: Annotated[int, typer.Option(help="Pages in flight at once.")] = 32,
    pages: Annotated[
        int, typer.Option(help="Site size: pages (5 media each); smaller for profiling.")
    ] = 1000,
    image_verification: ImageVerification = "all",
    engine: Engine = "local",
    address: RayAddress = None,
    ray_nodes: Annotated[
        int,
        typer.Option(
            min=1,
            help="--engine ray without --address: a cluster of this many local nodes "
            "(one CPU each), started and stopped by the benchmark.",
        ),
    ] = 2,
    json_out: JsonFlag = False,
) -> None:
    """Crawl a generated local site of 1,000 pages / 5,000 media from ../shared/data with
    planted transformed copies of references: pages/s, media/s, peak memory, time to the
    last queued match, planted found vs missed (target: whole site < 120 s).

    Example: `ansim bench crawl --out bench-out/crawl` (`--pages 100` for a quick profile;
    `--engine ray` on a local two-node cluster, or `--address HOST:PORT` on yours)
    """
    from ansim.benchmarks.crawl_bench import run_crawl_bench

    checked_engine(engine)
    result = run_crawl_bench(
        shared_data_dir(), out_dir, workers, pages, image_verification, engine, address, ray_nodes
    )
    emit_json(result) if json_out else out.print_json(data=result)


@bench_app.command("scan")
@refusals
def bench_scan(
    out_dir: Annotated[Path, typer.Option("--out", help="Scratch homes and results.")],
    folder: Annotated[
        Path | None, typer.Option(help="Images to scan (default: ../shared/data/images).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many images.")] = 120,
    workers: Annotated[
        int | None, typer.Option(help="The parallel run's workers (default: one per core).")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local (worker processes only) or ray (also a scan through Ray actors on a "
            "local cluster started for it)."
        ),
    ] = "local",
    ray_nodes: Annotated[
        int, typer.Option(min=1, help="--engine ray: the local cluster's nodes (one CPU each).")
    ] = 2,
    long_side: Annotated[
        int | None,
        typer.Option(
            min=16,
            help="Scan JPEG copies (quality 90) of the images scaled to this long side, made "
            "in OUT before the runs (e.g. 1024: a forum dump's photos).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """`ansim scan` of one folder with --workers 1 and with the default (and through Ray
    with --engine ray), beside a plain single-process pdqhash loop and imagehash pHash on
    the same files: images/s and each one's speed relative to the pdqhash loop (target:
    the default scan >= 1.0).

    Example: `ansim bench scan --out bench-out/scan --limit 120 [--long-side 1024] [--engine ray]`
    """
    from ansim.benchmarks.scan_bench import run_scan_bench

    checked_engine(engine)
    source = folder or shared_data_dir() / "images"
    try:
        result = run_scan_bench(
            source, out_dir, limit, workers, ray_nodes if engine == "ray" else 0, long_side
        )
    except ValueError as exc:
        raise CaseworkError(str(exc)) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    if json_out:
        emit_json(result)
        return
    copies = f" as {result['long_side']}-px JPEG copies" if result["long_side"] else ""
    out.print(f"{result['images']} images from {result['folder']}{copies}, {result['cores']} cores")
    for label, row in result["rows"].items():
        out.print(
            f"{row['images_per_s']:8.2f} images/s  x{row['vs_pdqhash_loop']:<6} "
            f"{row['images_per_cpu_s']:8.2f} per CPU-second  {label}",
            highlight=False,
        )
    out.print(f"same findings in every scan: {result['same_findings']}")


@bench_app.command("retrohunt")
@refusals
def bench_retrohunt(
    out_dir: Annotated[Path, typer.Option("--out", help="Scratch home and results.")],
    items: Annotated[int, typer.Option(help="Synthetic crawled items in the history.")] = 1_000_000,
    json_out: JsonFlag = False,
) -> None:
    """Retro-hunt of one new image reference against a synthetic crawl history
    (target: < 5 s for 1,000,000 items on 2 cores).

    Example: `ansim bench retrohunt --out bench-out/retrohunt`
    """
    from ansim.benchmarks.retrohunt_bench import run_retrohunt_bench

    result = run_retrohunt_bench(shared_data_dir(), out_dir, items)
    emit_json(result) if json_out else out.print_json(data=result)


@bench_app.command("scale")
@refusals
def bench_scale(
    out_dir: Annotated[Path, typer.Option("--out", help="An empty folder for the banks.")],
    entries: Annotated[
        str, typer.Option(help="Reference bank sizes, comma-separated (1e6,1e7 allowed).")
    ] = "1e6",
    history: Annotated[
        str, typer.Option(help="Crawl-history index sizes (index only, no store).")
    ] = "",
    descriptors: Annotated[
        str, typer.Option(help="Compressed descriptor index sizes (synthetic vectors).")
    ] = "",
    robust_descriptors: Annotated[
        str,
        typer.Option(
            help="Descriptor bank: the robust benchmark's real queries among this many "
            "synthetic descriptors (--photos of its pool), recall against the exact index."
        ),
    ] = "",
    text_refs: Annotated[
        str, typer.Option(help="Text reference bank sizes: open time and queries/s.")
    ] = "",
    audio_hours: Annotated[
        str, typer.Option(help="Audio bank sizes in hours: open time and queries/s.")
    ] = "",
    photos: Annotated[int, typer.Option(help="Real photos whose near copies are planted.")] = 60,
    history_memory_limit: Annotated[
        float,
        typer.Option(
            help="Open and search each history inside a memory cgroup of this many GB "
            "(needs a writable /sys/fs/cgroup; 0: no limit)."
        ),
    ] = 0,
    audio_memory_limit: Annotated[
        float,
        typer.Option(
            help="Open and search each audio bank inside a memory cgroup of this many GB "
            "(needs a writable /sys/fs/cgroup; 0: no limit)."
        ),
    ] = 0,
    json_out: JsonFlag = False,
) -> None:
    """The PDQ bank at scale: import time and RSS, open time, lookups/s with recall against
    the exhaustive twin, add/withdraw latency, index bytes per entry; text and audio
    banks' open time and queries/s.

    Example: `nice ansim bench scale --out bench-out/scale --entries 1e6,1e7` (1M: a few
    minutes on 2 cores; 10M: about 20 and 4 GB of disk); the crawl history at 100M inside
    8 GB: `ansim bench scale --out OUT --entries '' --history 1e8 --history-memory-limit 8`
    (~5 minutes, 11 GB of disk); an audio bank of 1,000 hours with its pages not resident:
    `ansim bench scale --out OUT --entries '' --audio-hours 1000 --audio-memory-limit 1`.
    """
    from ansim.benchmarks.scale import ScaleConfig, run_scale_benchmark

    def sizes(text: str) -> list[int]:
        try:
            return [int(float(part)) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise CaseworkError(f"sizes must be numbers like 1e6,1e7: {text!r}") from exc

    def hours(text: str) -> list[float]:
        try:
            return [float(part) for part in text.split(",") if part.strip()]
        except ValueError as exc:
            raise CaseworkError(f"hours must be numbers like 10,100: {text!r}") from exc

    config = ScaleConfig(
        out=out_dir,
        images=shared_data_dir() / "images",
        entries=sizes(entries),
        history=sizes(history),
        descriptors=sizes(descriptors),
        robust_descriptors=sizes(robust_descriptors),
        text_references=sizes(text_refs),
        audio_hours=hours(audio_hours),
        texts=shared_data_dir() / "text",
        audio_recordings=shared_data_dir() / "audio",
        photos=photos,
        history_memory_limit=int(history_memory_limit * 2**30) or None,
        audio_memory_limit=int(audio_memory_limit * 2**30) or None,
    )
    if not (
        config.entries
        or config.history
        or config.descriptors
        or config.robust_descriptors
        or config.text_references
        or config.audio_hours
    ):
        raise CaseworkError(
            "give --entries, --history, --descriptors, --robust-descriptors, --text-refs and/or "
            "--audio-hours sizes"
        )
    from ansim.benchmarks.processes import StepDied

    try:
        report = run_scale_benchmark(config, lambda line: err.print(line, highlight=False))
    except ValueError as exc:
        raise CaseworkError(str(exc)) from exc
    except StepDied as exc:
        print_error(str(exc))
        raise typer.Exit(1) from exc
    if json_out:
        emit_json(report)
    else:
        out.print_json(data=report)


@bench_app.command("audio")
def bench_audio(
    data: Annotated[Path, typer.Option(help="Folder of benign recordings (references).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the report goes.")],
    filler_minutes: Annotated[
        float, typer.Option(help="Generated filler music added to the index.")
    ] = 30.0,
    clips: Annotated[int, typer.Option(help="Clips per recording per clip length.")] = 2,
    hold_out: Annotated[
        list[str] | None,
        typer.Option(help="Recording (file stem) kept out of the index as a distractor."),
    ] = None,
    seed: int = 0,
    no_fpcalc: Annotated[bool, typer.Option("--no-fpcalc", help="Skip Chromaprint.")] = False,
    edit: Annotated[
        list[str] | None, typer.Option(help="Only this edit (repeatable), e.g. 'noise 0 dB'.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Audio recall per repost edit, precision, speed and index size, beside fpcalc.

    Example: `ansim bench audio --data ../shared/data/audio --out bench-out/audio`
    """
    from ansim.benchmarks.audio import (
        DEFAULT_HELD_OUT,
        BenchConfig,
        report_markdown,
        run_audio_bench,
    )

    if not data.is_dir():
        err.print(f"[red]error:[/red] {data} is not a folder")
        raise typer.Exit(2)
    config = BenchConfig(
        data=data,
        out=out_dir,
        held_out=tuple(hold_out) if hold_out else DEFAULT_HELD_OUT,
        filler_minutes=filler_minutes,
        clips_per_length=clips,
        seed=seed,
        use_fpcalc=not no_fpcalc,
        only_edits=tuple(edit or ()),
    )
    with progress_bar() as progress:
        task = progress.add_task("audio bench", total=None, current="")

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = run_audio_bench(config, log=lambda m: err.print(m), advance=advance)
        except MediaError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    command = "ansim " + " ".join(sys.argv[1:])
    markdown = report_markdown(result, command)
    (out_dir / "audio-report.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "audio-report.md").write_text(markdown)
    emit_json(result) if json_out else out.print(markdown, highlight=False)


@bench_app.command("robust")
def bench_robust(
    data: Annotated[
        Path | None, typer.Option(help="The shared images folder (default ../shared/data/images).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Photos per pool (half references, half distractors).")
    ] = None,
    transform: Annotated[
        list[str] | None, typer.Option(help="Only these transforms (repeatable).")
    ] = None,
    calibrate: Annotated[
        bool, typer.Option(help="Recalibrate the decision on cq100 + kodak24 first.")
    ] = False,
    thresholds: Annotated[
        Path | None,
        typer.Option(help="Calibration file (default models/weights/image_decision.json)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="Report folder.")] = Path("bench-out/robust"),
    crawl_queries: Annotated[
        bool,
        typer.Option(
            help="Queries' ORB features without the half-size keypoints, as a crawl hashes "
            "its images."
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Hard transforms (crops, rotations, pads, memes, screenshots, pastes, perspective):
    PDQ alone vs the descriptor alone vs ansim's full decision (and the crawl's
    `--image-verification triage` on the same signals), measured on bsds500/test.

    Example: `ansim bench robust --calibrate` (full run), `ansim bench robust --limit 20`
    """
    from ansim.benchmarks.image_transforms import EASY_TRANSFORMS, HARD_TRANSFORMS
    from ansim.benchmarks.robust_images import (
        RobustBenchConfig,
        markdown_table,
        run_benchmark,
        write_report,
    )
    from ansim.detector.image_decision import CALIBRATION_FILE

    known = {**HARD_TRANSFORMS, **EASY_TRANSFORMS}
    unknown = [t for t in transform or [] if t not in known]
    if unknown:
        err.print(f"[red]error:[/red] unknown transform(s) {unknown}; known: {', '.join(known)}")
        raise typer.Exit(2)
    config = RobustBenchConfig(
        data_root=data or shared_data_root() / "images",
        limit=limit,
        transforms=tuple(transform) if transform else tuple(known),
        query_half_size_features=not crawl_queries,
    )
    with progress_bar() as progress:
        task = progress.add_task("bench", total=None, current="")

        def show(phase: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=phase)

        try:
            result = run_benchmark(config, calibrate, thresholds or CALIBRATION_FILE, show)
        except FileNotFoundError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
    write_report(result, out_dir)
    if json_out:
        emit_json(result)
    else:
        out.print(markdown_table(result), highlight=False)
        out.print(f"timing: {json.dumps(result['timing']['projected_queries_per_second_2_cores'])}")
        out.print(f"report in {out_dir}")


@bench_app.command("startup")
def bench_startup(
    runs: Annotated[int, typer.Option(help="Timed runs of each command.")] = 5,
    json_out: JsonFlag = False,
) -> None:
    """Start-up time of `ansim --help`, `--version`, a group's help and commands that match
    nothing, each a fresh process (median and fastest wall time, median CPU time).
    Exits 1 when a median wall time is over the 0.5 s target.

    Example: `ansim bench startup --runs 10`
    """
    import os

    from ansim.benchmarks.startup import TARGET_S, as_rows, run_startup_benchmark
    from ansim.commands.display import Column, fitted_table

    timings = run_startup_benchmark(max(1, runs))
    if json_out:
        emit_json(
            {"target_s": TARGET_S, "load_average": os.getloadavg(), "timings": as_rows(timings)}
        )
    else:
        columns = [
            Column("command", key=True),
            Column("wall median s"),
            Column("wall min s"),
            Column("CPU median s"),
            Column(f"<= {TARGET_S} s"),
        ]
        rows = [
            (
                t.command + (" (TYPER_USE_RICH=0)" if "plain" in t.name else ""),
                f"{t.wall_median_s:.3f}",
                f"{t.wall_min_s:.3f}",
                f"{t.cpu_median_s:.3f}",
                "yes" if t.within_target else "no",
            )
            for t in timings
        ]
        out.print(fitted_table(out, columns, rows))
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        out.print(f"{runs} runs each; load average {load}", highlight=False)
    raise typer.Exit(0 if all(t.within_target for t in timings) else 1)


def _register_serve() -> None:
    from ansim.commands.bench_serve import bench_serve

    bench_app.command("serve")(bench_serve)


_register_serve()
