"""`ansim hash` and `ansim scan`: fingerprint media, check files and URLs against the banks."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.commands.common import (
    AllowLoopback,
    JsonFlag,
    count_files,
    emit_json,
    err,
    hash_options,
    out,
    progress_bar,
    refusals,
)
from ansim.commands.crawl import print_crawl_summary
from ansim.detector.errors import MediaError
from ansim.detector.video import VideoOptions
from ansim.detector.vpdq_format import format_videos
from ansim.pipeline import crawling, scanning
from ansim.pipeline.workspaces import open_workspace
from ansim.signal_types.hashing import hash_file


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
    json_out: JsonFlag = False,
) -> None:
    """Print the signals of each file without storing anything.

    Examples: `ansim hash photo.jpg --json`; `ansim hash clip.mp4 --format vpdq > clip.txt`;
    Meta's own vPDQ hashes: `ansim hash clip.mp4 --format vpdq --seconds-per-hash 0
    --no-crop-borders`.
    """
    from ansim.casework.files import expand_paths

    if output_format not in ("text", "vpdq"):
        err.print("[red]error:[/red] --format must be text or vpdq")
        raise typer.Exit(2)
    options = dataclasses.replace(
        hash_options(full_decode),
        video=VideoOptions(
            seconds_per_hash=max(0.0, seconds_per_hash), crop_borders=crop_borders, min_frames=0
        ),
    )
    results = []
    vpdq_texts: list[tuple[str, list[Any]]] = []
    for path in expand_paths(paths):
        try:
            signals = hash_file(path, options)
            if "vpdq" in signals.extra:
                vpdq_texts.append((str(path), signals.extra["vpdq"].frames))
            results.append(
                {
                    "path": str(path),
                    "modality": signals.modality,
                    "signals": signals.summary(),
                    "error": None,
                }
            )
        except MediaError as exc:
            results.append(
                {"path": str(path), "modality": None, "signals": None, "error": str(exc)}
            )
    if output_format == "vpdq":
        sys.stdout.write(format_videos(vpdq_texts) if vpdq_texts else "")
        for r in results:
            if r["error"]:
                err.print(f"[red]failed[/red] {r['path']}: {r['error']}", highlight=False)
            elif r["modality"] != "video":
                err.print(f"skipped {r['path']}: not a video", highlight=False)
    elif json_out:
        emit_json(results)
    else:
        for r in results:
            if r["error"]:
                out.print(f"[red]failed[/red] {r['path']}: {r['error']}", highlight=False)
            elif r["modality"] == "video":
                frames = r["signals"]["vpdq"]
                out.print(
                    f"{r['path']} [video] sha256={r['signals']['sha256']}, vpdq={len(frames)} "
                    "frames (--format vpdq or --json prints them)",
                    highlight=False,
                )
            else:
                shown = ", ".join(f"{k}={v}" for k, v in r["signals"].items())
                out.print(f"{r['path']} [{r['modality']}] {shown}", highlight=False)
    raise typer.Exit(1 if any(r["error"] for r in results) else 0)


@refusals
def scan(
    targets: Annotated[
        list[str], typer.Argument(help="Files, folders (recursive), or http(s) URLs.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Match but record nothing.")] = False,
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    allow_loopback: AllowLoopback = False,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint collected files or URLs, match them against every reference, queue the copies.

    A URL is fetched with the crawler's fetcher and guards: a page is checked with the
    media on it, a media URL by itself; matches are queued with sealed WARC evidence.

    Examples: `ansim scan ~/collected/forum-dump/ --json`,
    `ansim scan https://forum.example/thread/123 https://cdn.example/i/9.jpg`
    """
    workspace = open_workspace()
    urls = [t for t in targets if "://" in t]
    if urls:
        if dry_run:
            err.print("[red]error:[/red] --dry-run applies to files only, not URLs")
            raise typer.Exit(2)
        summary = crawling.scan_urls(workspace, urls, allow_loopback)
        print_crawl_summary(summary, json_out, verb="scanned")
        failed = sum(v for k, v in summary.outcomes.items() if k not in ("ok", "not_html"))
        if len(urls) == len(targets):
            raise typer.Exit(1 if failed else 0)
    paths = [Path(t) for t in targets if "://" not in t]
    if not paths:
        return
    with progress_bar() as progress:
        task = progress.add_task("scanning", total=count_files(paths), current="")

        def advance(path: Path, matches: list[scanning.ScanMatch], error: str | None) -> None:
            progress.update(task, advance=1, current=path.name)

        report = scanning.scan_paths(
            workspace, paths, dry_run, hash_options(full_decode), on_item=advance
        )
    if json_out:
        emit_json(report.as_dict())
    else:
        for failure in report.failures:
            out.print(f"[red]failed[/red] {failure['path']}: {failure['error']}", highlight=False)
        for m in report.matches:
            queued = f"queue item {m.takedown_id}" if m.takedown_id else "not recorded (dry run)"
            out.print(
                f"[bold]match[/bold] {m.location} -> case {m.case_id}, reference {m.reference_id}: "
                f"{m.explanation}; {queued}",
                highlight=False,
            )
        out.print(
            f"{report.scanned} scanned, {len(report.matches)} matches, {report.errors} errors"
        )
    raise typer.Exit(1 if report.errors else 0)
