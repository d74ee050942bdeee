"""`ansim ref ...`: register what a victim reported, import/export hash lists, withdraw consent."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    JsonFlag,
    count_files,
    emit_json,
    err,
    format_vpdq_texts,
    hash_options,
    out,
    progress_bar,
    refusals,
)
from ansim.detector.video import REFERENCE_SECONDS_PER_HASH, reference_options
from ansim.pipeline import intake
from ansim.pipeline.workspaces import open_workspace

ref_app = typer.Typer(
    help="References: what a victim reported, kept as fingerprints only.", no_args_is_help=True
)


@ref_app.command("add")
@refusals
def ref_add(
    case_id: str,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (recursive).")
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="Register this text (kept as fingerprints only).")
    ] = None,
    lines: Annotated[
        bool, typer.Option("--lines", help="Text files: one reference per non-blank line.")
    ] = False,
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    seconds_per_hash: Annotated[
        float,
        typer.Option(
            help="Video: hash a frame every this many seconds (0 = every frame, frames "
            "within a few bits of the last kept one dropped; scans use 1 s)."
        ),
    ] = REFERENCE_SECONDS_PER_HASH,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint reported files or texts into the case's references. The media itself is
    not kept.

    Examples: `ansim ref add C-2026-0001 ~/intake/2026-11-25/`,
    `ansim ref add C-2026-0001 posts.txt --lines`, `ansim ref add C-2026-0001 --text "..."`
    """
    if not paths and text is None:
        raise CaseworkError("give files or folders, or --text")
    workspace = open_workspace()
    options = dataclasses.replace(
        hash_options(full_decode),
        video=reference_options(max(0.0, seconds_per_hash)),
    )
    texts: list[tuple[str, str]] = [("--text", text)] if text is not None else []
    files = list(paths or [])
    if lines:
        from ansim.casework.files import expand_paths

        for path in expand_paths(files):
            texts += intake.text_lines(path, options)
        files = []
    with progress_bar() as progress:
        task = progress.add_task(
            "fingerprinting", total=count_files(files) + len(texts), current=""
        )

        def advance(result: intake.IntakeResult) -> None:
            progress.update(task, advance=1, current=Path(result.path).name)

        results = intake.add_reference_texts(workspace, case_id, texts, options, advance)
        if files:
            results += intake.add_reference_files(workspace, case_id, files, options, advance)
    failed = [r for r in results if r.error]
    if json_out:
        emit_json([r.as_dict() for r in results])
    else:
        for r in results:
            if r.error:
                out.print(f"[red]failed[/red] {r.path}: {r.error}", highlight=False)
            else:
                note = " (already a reference of this case)" if r.duplicate else ""
                out.print(
                    f"reference {r.reference_id} ({r.modality}) <- {r.path}{note}", highlight=False
                )
                for m in r.retro_matches:
                    out.print(
                        f"  [bold]already crawled[/bold] at {m.location}: {m.explanation}; "
                        f"queue item {m.takedown_id}",
                        highlight=False,
                    )
        out.print(f"{len(results) - len(failed)} added, {len(failed)} failed")
    raise typer.Exit(1 if failed else 0)


@ref_app.command("import")
@refusals
def ref_import(
    case_id: str,
    list_file: Annotated[Path, typer.Argument(help="One hash per line, optionally `,label`.")],
    hash_format: Annotated[
        str, typer.Option("--format", help="pdq, md5, or vpdq (a video's hash file or folder)")
    ] = "pdq",
    json_out: JsonFlag = False,
) -> None:
    """Import a hash list shared by another system (StopNCII-style banks, HMA exports).

    With `--format vpdq` each file is one video's vPDQ hashes (`frame,quality,pdq,seconds`
    lines, as Meta's vpdq writes them), or several under `# label` lines; a folder imports
    every file in it. Example: `ansim ref import C-2026-0001 shared-video.txt --format vpdq`
    """
    if hash_format == "vpdq":
        imported = intake.import_vpdq_files(open_workspace(), case_id, [list_file])
        bad = [r for r in imported if r.error]
        if json_out:
            emit_json([r.as_dict() for r in imported])
        else:
            for r in imported:
                if r.error:
                    out.print(f"[red]failed[/red] {r.path}: {r.error}", highlight=False)
                else:
                    out.print(f"reference {r.reference_id} (video) <- {r.path}", highlight=False)
            out.print(f"{len(imported) - len(bad)} imported, {len(bad)} rejected")
        raise typer.Exit(1 if bad else 0)
    workspace = open_workspace()
    with progress_bar() as progress:
        task = progress.add_task("importing", total=None, current=list_file.name)

        def advance(bytes_read: int, total: int) -> None:
            progress.update(task, completed=bytes_read, total=total)

        report = intake.import_hash_list(workspace, case_id, list_file, hash_format, advance)
    if json_out:
        emit_json(report.as_dict())
    else:
        for r in report.rejections:
            out.print(f"[red]line {r.line}[/red]: {r.error}", highlight=False)
        if report.rejected > len(report.rejections):
            out.print(f"... and {report.rejected - len(report.rejections)} more rejected lines")
        ids = (
            f" as references {report.first_reference_id}..{report.last_reference_id}"
            if report.imported
            else ""
        )
        out.print(f"{report.imported} imported{ids}, {report.rejected} rejected")
    raise typer.Exit(1 if report.rejected else 0)


@ref_app.command("export")
@refusals
def ref_export(
    hash_format: Annotated[str, typer.Option("--format", help="pdq, md5 or vpdq")] = "pdq",
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export reference hashes as `hash,ref-ID` lines, the format `ref import` reads.

    `--format vpdq` writes video references in vPDQ's format: one plain vPDQ file for one
    video, `# ref-ID` headed blocks for several, one `ref-ID.txt` each when --out is a folder.
    """
    if hash_format == "vpdq":
        videos = intake.export_vpdq(open_workspace(), case_id)
        if output and output.is_dir():
            for label, text in videos:
                (output / f"{label}.txt").write_text(text)
            err.print(f"wrote {len(videos)} vPDQ files to {output}")
        elif output:
            output.write_text(format_vpdq_texts(videos))
            err.print(f"wrote {len(videos)} videos to {output}")
        else:
            sys.stdout.write(format_vpdq_texts(videos))
        return
    workspace = open_workspace()
    if output:
        with open(output, "w", encoding="utf-8") as sink:
            written = intake.export_hash_list(workspace, hash_format, sink.write, case_id)
        err.print(f"wrote {written} hashes to {output}")
    else:
        intake.export_hash_list(workspace, hash_format, sys.stdout.write, case_id)


@ref_app.command("withdraw")
@refusals
def ref_withdraw(
    reference_id: int,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """The victim withdrew consent: its signals are deleted and leave every index at once."""
    removed = intake.withdraw_reference(open_workspace(), reference_id, reason)
    if json_out:
        emit_json({"reference_id": reference_id, "signals_removed": removed})
    else:
        out.print(f"reference {reference_id} withdrawn; {removed} signals deleted")
