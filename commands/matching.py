"""`ansim hash` and `ansim scan`: fingerprint media, check files and URLs against the banks."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    AllowLoopback,
    Engine,
    JsonFlag,
    RayAddress,
    Workers,
    budgets,
    checked_engine,
    count_files,
    emit_json,
    err,
    hash_options,
    out,
    print_error,
    print_failed,
    progress_bar,
    refusals,
    worker_count,
)
from ansim.commands.crawl import print_crawl_summary
from ansim.commands.display import nested
from ansim.commands.workspace import open_workspace
from ansim.i18n import _
from rich.text import Text

if TYPE_CHECKING:
    from ansim.pipeline.scanning import ScanMatch


@refusals
def hash_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="text, or vpdq: videos as vPDQ hash lines.")
    ] = "text",
    seconds_per_hash: Annotated[
        float, typer.Option(help="Video: hash a frame every this many seconds (0 = every frame).")
    ] = 1.0,
    crop_borders: Annotated[
        bool, typer.Option(help="Video: crop flat borders (letterbox) before hashing.")
    ] = True,
    workers: Workers = None,
    json_out: JsonFlag = False,
) -> None:
    """Print the signals of each file without storing anything.

    Examples: `ansim hash photo.jpg --json`; `ansim hash clip.mp4 --format vpdq > clip.txt`;
    Meta's own vPDQ hashes: `ansim hash clip.mp4 --format vpdq --seconds-per-hash 0
    --no-crop-borders`.
    """
    from ansim.casework.files import expand_paths
    from ansim.detector.video import VideoOptions
    from ansim.detector.vpdq_format import format_videos
    from ansim.pipeline.file_hashing import hash_paths

    if output_format not in ("text", "vpdq"):
        print_error(_("--format must be text or vpdq"))
        raise typer.Exit(2)
    options = dataclasses.replace(
        hash_options(full_decode),
        video=VideoOptions(
            seconds_per_hash=max(0.0, seconds_per_hash), crop_borders=crop_borders, min_frames=0
        ),
    )
    listed = list(expand_paths(paths))
    by_path: dict[Path, dict[str, Any]] = {}
    videos: dict[Path, list[Any]] = {}
    for outcome in hash_paths(listed, options, worker_count(workers), budgets()):
        path, signals = outcome.key, outcome.value
        if outcome.failure is not None:
            by_path[path] = {
                "path": str(path),
                "modality": None,
                "signals": None,
                "error": outcome.failure,
            }
            continue
        if "vpdq" in signals.extra:
            videos[path] = signals.extra["vpdq"].frames
        by_path[path] = {
            "path": str(path),
            "modality": signals.modality,
            "signals": signals.summary(),
            "error": None,
        }
    results = [by_path[path] for path in listed]
    vpdq_texts = [(str(path), videos[path]) for path in listed if path in videos]
    if output_format == "vpdq":
        sys.stdout.write(format_videos(vpdq_texts) if vpdq_texts else "")
        for r in results:
            if r["error"]:
                print_failed(r["path"], r["error"], err)
            elif r["modality"] != "video":
                err.print(_("skipped {path}: not a video").format(path=r["path"]), highlight=False)
    elif json_out:
        emit_json(results)
    else:
        for r in results:
            if r["error"]:
                print_failed(r["path"], r["error"])
                continue
            signals = dict(r["signals"])
            if r["modality"] == "video":
                signals["vpdq"] = _("{frames} frames (--format vpdq or --json prints them)").format(
                    frames=len(signals["vpdq"])
                )
            out.print(
                Text(str(r["path"]), style="bold") + f" ({_(r['modality'])})", highlight=False
            )
            for line in nested(signals, "  "):
                out.print(Text(line), highlight=False, soft_wrap=True)
    raise typer.Exit(1 if any(r["error"] for r in results) else 0)


@refusals
def scan(
    targets: Annotated[
        list[str], typer.Argument(help="Files, folders (recursive), or http(s) URLs.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Match but record nothing.")] = False,
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    allow_loopback: AllowLoopback = False,
    workers: Workers = None,
    engine: Engine = "local",
    address: RayAddress = None,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint collected files or URLs, match them against every reference, queue the copies.

    A URL is fetched with the crawler's fetcher and guards: a page is checked with the
    media on it, a media URL by itself; matches are queued with sealed WARC evidence.

    Examples: `ansim scan ~/collected/forum-dump/ --json`,
    `ansim scan https://forum.example/thread/123 https://cdn.example/i/9.jpg`
    """
    checked_engine(engine)
    if engine == "ray":
        from ansim.pipeline.ray_engine import ray_available

        if not ray_available():
            raise CaseworkError(_("--engine ray needs Ray: pip install -e '.[cluster]'"))
    from ansim.pipeline import crawl as crawling
    from ansim.pipeline import scanning

    workspace = open_workspace()
    urls = [t for t in targets if "://" in t]
    if urls:
        if dry_run:
            print_error(_("--dry-run applies to files only, not URLs"))
            raise typer.Exit(2)
        summary = crawling.scan_urls(
            workspace, urls, allow_loopback or workspace.settings.allow_loopback
        )
        print_crawl_summary(summary.as_dict(), json_out, verb=_("scanned"))
        failed = sum(v for k, v in summary.outcomes.items() if k not in ("ok", "not_html"))
        if len(urls) == len(targets):
            raise typer.Exit(1 if failed else 0)
    paths = [Path(t) for t in targets if "://" not in t]
    if not paths:
        return
    with progress_bar() as progress:
        task = progress.add_task("scanning", total=count_files(paths), current="")

        def advance(path: Path, matches: list[ScanMatch], error: str | None) -> None:
            progress.update(task, advance=1, current=path.name)

        report = scanning.scan_paths(
            workspace,
            paths,
            dry_run,
            hash_options(full_decode),
            on_item=advance,
            workers=worker_count(workers) if engine == "local" else (workers or 0),
            budgets=budgets(),
            engine=engine,
            address=address,
        )
    if json_out:
        emit_json(report.as_dict())
    else:
        for failure in report.failures:
            print_failed(failure["path"], failure["error"])
        for m in report.matches:
            queued = (
                _("queue item {item}").format(item=m.takedown_id)
                if m.takedown_id
                else _("not recorded (dry run)")
            )
            out.print(Text(_("match") + " ", style="bold") + Text(m.location), highlight=False)
            out.print(
                "  "
                + _("case {case}, reference {reference}: {why}; {queued}").format(
                    case=m.case_id, reference=m.reference_id, why=m.explanation, queued=queued
                ),
                highlight=False,
            )
        out.print(
            _("{scanned} scanned, {matches} matches, {errors} errors").format(
                scanned=report.scanned, matches=len(report.matches), errors=report.errors
            )
        )
    raise typer.Exit(1 if report.errors else 0)
