"""`ansim ref ...`: register what a victim reported, import/export hash lists, withdraw consent."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    AskReason,
    JsonFlag,
    ReasonFile,
    Workers,
    budgets,
    count_files,
    emit_json,
    err,
    format_vpdq_texts,
    hash_options,
    out,
    print_failed,
    progress_bar,
    read_private_text,
    refusals,
    shown,
    worker_count,
)
from ansim.commands.display import Column, counts, fitted_table, text_or_dash, when
from ansim.commands.workspace import open_listing, open_workspace
from ansim.i18n import _
from rich.table import Table

if TYPE_CHECKING:
    from ansim.casework.listings import ListingStore
    from ansim.pipeline.intake import IntakeResult

# As ansim.detector.video.REFERENCE_SECONDS_PER_HASH (tests/commands/test_startup.py checks), which
# this module does not import: the video detector takes longer to load than `--help` may.
REFERENCE_SECONDS_PER_HASH = 0.0

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
    workers: Workers = None,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint reported files or texts into the case's references. The media itself is
    not kept.

    Examples: `ansim ref add C-2026-0001 ~/intake/2026-11-25/`,
    `ansim ref add C-2026-0001 posts.txt --lines`, `ansim ref add C-2026-0001 --text "..."`
    """
    from ansim.detector.video import reference_options
    from ansim.pipeline import intake

    if not paths and text is None:
        raise CaseworkError(_("give files or folders, or --text"))
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

        def advance(result: IntakeResult) -> None:
            progress.update(task, advance=1, current=Path(result.path).name)

        results = intake.add_reference_texts(workspace, case_id, texts, options, advance)
        if files:
            results += intake.add_reference_files(
                workspace,
                case_id,
                files,
                options,
                advance,
                workers=worker_count(workers),
                budgets=budgets(),
            )
    failed = [r for r in results if r.error]
    if json_out:
        emit_json([r.as_dict() for r in results])
    else:
        for r in results:
            if r.error:
                print_failed(r.path, r.error)
                continue
            note = _(" (already a reference of this case)") if r.duplicate else ""
            out.print(
                _("reference {id} ({modality}) <- {path}").format(
                    id=r.reference_id, modality=_(r.modality), path=shown(r.path)
                )
                + note,
                highlight=False,
            )
            for m in r.retro_matches:
                out.print(
                    "  "
                    + _("already crawled at {location}: {why}; queue item {item}").format(
                        location=shown(m.location), why=shown(m.explanation), item=m.takedown_id
                    ),
                    highlight=False,
                )
            for gone in r.retro_not_online:
                out.print(
                    "  "
                    + _("crawled at {location} (last seen {seen}), not verified: {verdict}").format(
                        location=shown(gone.location), seen=gone.last_seen, verdict=gone.reason
                    ),
                    highlight=False,
                )
        out.print(
            _("{added} added, {failed} failed").format(
                added=len(results) - len(failed), failed=len(failed)
            )
        )
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
    from ansim.pipeline import intake

    if hash_format == "vpdq":
        imported = intake.import_vpdq_files(open_workspace(), case_id, [list_file])
        print_vpdq_imports([r.as_dict() for r in imported], json_out)
    workspace = open_workspace()
    with progress_bar() as progress:
        task = progress.add_task("importing", total=None, current=list_file.name)

        def advance(bytes_read: int, total: int) -> None:
            progress.update(task, completed=bytes_read, total=total)

        report = intake.import_hash_list(workspace, case_id, list_file, hash_format, advance)
    print_import(report.as_dict(), json_out)


def print_vpdq_imports(imported: list[dict[str, Any]], json_out: bool) -> None:
    """Video references imported from vPDQ files; exits 1 when a file was refused."""
    bad = [r for r in imported if r["error"]]
    if json_out:
        emit_json(imported)
    else:
        for r in imported:
            if r["error"]:
                print_failed(r["path"], r["error"])
            else:
                out.print(
                    _("reference {id} ({modality}) <- {path}").format(
                        id=r["reference_id"], modality=_("video"), path=shown(r["path"])
                    ),
                    highlight=False,
                )
        out.print(
            _("{imported} imported, {rejected} rejected").format(
                imported=len(imported) - len(bad), rejected=len(bad)
            )
        )
    raise typer.Exit(1 if bad else 0)


def print_import(report: dict[str, Any], json_out: bool) -> None:
    """A hash list's import: its rejected lines; exits 1 when a line was rejected."""
    if json_out:
        emit_json(report)
    else:
        for r in report["rejections"]:
            out.print(
                _("line {line}: {error}").format(line=r["line"], error=shown(r["error"])),
                style="red",
                highlight=False,
            )
        if report["rejected"] > len(report["rejections"]):
            out.print(
                _("... and {count} more rejected lines").format(
                    count=report["rejected"] - len(report["rejections"])
                )
            )
        out.print(
            _("{imported} imported, {rejected} rejected").format(
                imported=report["imported"], rejected=report["rejected"]
            )
        )
    raise typer.Exit(1 if report["rejected"] else 0)


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
    from ansim.pipeline import intake
    from ansim.store.private_files import open_private

    if hash_format == "vpdq":
        write_vpdq_videos(intake.export_vpdq(open_workspace(), case_id), output)
        return
    workspace = open_workspace()
    if output:
        # Hashes of a victim's originals: a 0600 file, streamed.
        with open_private(output) as binary, io.TextIOWrapper(binary, "utf-8") as sink:
            written = intake.export_hash_list(workspace, hash_format, sink.write, case_id)
        err.print(f"wrote {written} hashes to {output}")
    else:
        intake.export_hash_list(workspace, hash_format, sys.stdout.write, case_id)


def write_vpdq_videos(videos: list[tuple[str, str]], output: Path | None) -> None:
    """Exported vPDQ texts: one 0600 file each into a folder, all in one 0600 file, or
    to stdout."""
    from ansim.store.private_files import write_private

    if output and output.is_dir():
        for label, text in videos:
            write_private(output / f"{Path(label).name}.txt", text.encode())
        err.print(f"wrote {len(videos)} vPDQ files to {output}")
    elif output:
        write_private(output, format_vpdq_texts(videos).encode())
        err.print(f"wrote {len(videos)} videos to {output}")
    else:
        sys.stdout.write(format_vpdq_texts(videos))


@ref_app.command("withdraw")
@refusals
def ref_withdraw(
    reference_id: int,
    reason_file: ReasonFile = None,
    ask_reason: AskReason = False,
    json_out: JsonFlag = False,
) -> None:
    """The victim withdrew consent: its signals are deleted and leave every index at once.
    The reason (from a file, stdin or a prompt) is kept encrypted with the audit log."""
    from ansim.pipeline import intake

    reason = read_private_text(reason_file, ask_reason, "Why")
    print_withdrawn(
        reference_id, intake.withdraw_reference(open_workspace(), reference_id, reason), json_out
    )


def print_withdrawn(reference_id: int, removed: int, json_out: bool) -> None:
    if json_out:
        emit_json({"reference_id": reference_id, "signals_removed": removed})
    else:
        out.print(
            _("reference {id} withdrawn; {removed} signals deleted").format(
                id=reference_id, removed=removed
            )
        )


def bank_signal_kinds() -> set[str]:
    """The signal kinds the reference banks index (the others are kept for exact lookups)."""
    from ansim.signal_types import indexed_type_names

    return set(indexed_type_names())


def reference_rows(store: ListingStore, case_id: str | None, modality: str | None) -> list[dict]:
    from ansim.casework.listings import list_references

    return list_references(store, case_id, modality, bank_signal_kinds())


def references_table(listed: list[dict[str, Any]], with_case: bool = True) -> Table:
    columns = [
        Column(_("id"), key=True),
        *([Column(_("case"), key=True)] if with_case else []),
        Column(_("modality"), keep=5),
        Column(_("label"), keep=2),
        Column(_("signals"), keep=1),
        Column(_("in bank"), keep=4),
        Column(_("consent"), keep=3),
        Column(_("added"), keep=0),
    ]
    rows = [
        (
            str(r["id"]),
            *([r["case_id"]] if with_case else []),
            _(r["modality"]),
            text_or_dash(r["label"]),
            counts(r["signals"], "\n"),
            str(r["bank_entries"]),
            _(r["consent"]),
            when(r["added_at"]),
        )
        for r in listed
    ]
    return fitted_table(out, columns, rows)


@ref_app.command("list")
@refusals
def ref_list(
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    modality: Annotated[
        str | None, typer.Option(help="Only this modality: image, video, audio, text or file.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """List references: case, modality, label, signals kept, entries in the banks, consent.

    Example: `ansim ref list --case C-2026-0001 --modality video`
    """
    with open_listing() as store:
        listed = reference_rows(store, case_id, modality)
    if json_out:
        emit_json(listed)
        return
    out.print(references_table(listed))
