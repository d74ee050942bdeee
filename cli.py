"""ansim's command line: one command group per noun.

Exit codes: 0 all good, 1 some items failed (or a check found problems), 2 the request
itself was refused (unknown id, bad value, no ansim home).
Every command that prints results takes --json; progress goes to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from casework import audit, cases, intake, queue, scanning
from casework.crypto import KeyProblem
from casework.errors import CaseworkError
from casework.models import CASE_TYPES, SERVICE_KINDS
from casework.workspace import NotInitialized, init_workspace, open_workspace
from detector.errors import MediaError
from detector.hashing import HashOptions, hash_file
from detector.image import ImageOptions

app = typer.Typer(
    help="ansim: find reposted victim material by fingerprint and drive its removal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
case_app = typer.Typer(help="Support cases and the services given to them.", no_args_is_help=True)
ref_app = typer.Typer(
    help="References: what a victim reported, kept as fingerprints only.", no_args_is_help=True
)
queue_app = typer.Typer(help="The takedown queue.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
index_app = typer.Typer(
    help="The signal indexes (rebuildable from the store).", no_args_is_help=True
)
bench_app = typer.Typer(help="Benchmarks that measure precision and speed.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(ref_app, name="ref")
app.add_typer(queue_app, name="queue")
app.add_typer(audit_app, name="audit")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
F = TypeVar("F", bound=Callable[..., Any])


def refusals(func: F) -> F:
    """Turn refused requests into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CaseworkError, NotInitialized, KeyProblem) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def count_files(paths: list[Path]) -> int:
    from casework.files import expand_paths

    return sum(1 for _ in expand_paths(paths))


def hash_options(full_decode: bool) -> HashOptions:
    return HashOptions(image=ImageOptions(fast_decode=not full_decode))


@app.command()
@refusals
def init(json_out: JsonFlag = False) -> None:
    """Create $ANSIM_HOME (default ~/.ansim): database, schema and encryption key (mode 0600).

    Safe to run again: it only creates what is missing and upgrades the schema.
    """
    workspace, created_key = init_workspace()
    result = {
        "home": str(workspace.home.root),
        "database": workspace.home.db_url.split("@")[-1],
        "key_file": str(workspace.home.key_file),
        "key_created": created_key,
    }
    if json_out:
        emit_json(result)
    else:
        out.print(
            f"ansim home ready at {result['home']} (key {'created' if created_key else 'kept'})"
        )


# ---------------------------------------------------------------- case


@case_app.command("open")
@refusals
def case_open(
    case_type: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(CASE_TYPES)}.")],
    pseudonym: Annotated[
        str | None, typer.Option(help="A name to call the case by (never the real name).")
    ] = None,
    contact: Annotated[
        str | None, typer.Option(help="Victim contact details; stored encrypted.")
    ] = None,
    assigned_to: Annotated[
        str | None, typer.Option(help="Staff member in charge (default: you).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Open a support case.

    Example: `ansim case open --type digital-sex-crime --pseudonym 'Blue'`
    """
    workspace = open_workspace()
    case_id = cases.open_case(workspace, case_type, pseudonym, contact, assigned_to)
    if json_out:
        emit_json({"case_id": case_id})
    else:
        out.print(f"opened case {case_id}")


@case_app.command("list")
@refusals
def case_list(
    status: Annotated[str | None, typer.Option(help="open or closed")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List cases with their reference and open-takedown counts."""
    summaries = [s.as_dict() for s in cases.list_cases(open_workspace(), status)]
    if json_out:
        emit_json(summaries)
        return
    table = Table("case", "type", "status", "pseudonym", "assigned", "references", "open takedowns")
    for s in summaries:
        table.add_row(
            s["case_id"], s["type"], s["status"], s["pseudonym"] or "", s["assigned_to"] or "",
            str(s["references"]), str(s["open_takedowns"]),
        )  # fmt: skip
    out.print(table)


@case_app.command("show")
@refusals
def case_show(
    case_id: str,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Decrypt and show contact details (audited).")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Show one case. Contact details stay hidden unless --reveal is given."""
    shown = cases.show_case(open_workspace(), case_id, reveal)
    if json_out:
        emit_json(shown)
        return
    for key, value in shown.items():
        if key != "services":
            out.print(f"[bold]{key}[/bold]: {value}", highlight=False)
    for service in shown["services"]:
        day = service["date"][:10]
        out.print(f"  service {service['id']}: {service['kind']} on {day} {service['note']}")


@case_app.command("service")
@refusals
def case_service(
    case_id: str,
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(SERVICE_KINDS)}.")],
    note: Annotated[str, typer.Option(help="What was done.")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Record a support service given to a case.

    Example: `ansim case service C-2026-0001 --kind legal --note 'filed complaint'`
    """
    service_id = cases.add_service(open_workspace(), case_id, kind, note)
    if json_out:
        emit_json({"case_id": case_id, "service_id": service_id})
    else:
        out.print(f"recorded service {service_id} for {case_id}")


# ---------------------------------------------------------------- ref


@ref_app.command("add")
@refusals
def ref_add(
    case_id: str,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint reported files into the case's references. The media itself is not kept.

    Example: `ansim ref add C-2026-0001 ~/intake/2026-11-25/`
    """
    workspace = open_workspace()
    with progress_bar() as progress:
        task = progress.add_task("fingerprinting", total=count_files(paths), current="")

        def advance(result: intake.IntakeResult) -> None:
            progress.update(task, advance=1, current=Path(result.path).name)

        results = intake.add_reference_files(
            workspace, case_id, paths, hash_options(full_decode), advance
        )
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
        out.print(f"{len(results) - len(failed)} added, {len(failed)} failed")
    raise typer.Exit(1 if failed else 0)


@ref_app.command("import")
@refusals
def ref_import(
    case_id: str,
    list_file: Annotated[Path, typer.Argument(help="One hash per line, optionally `,label`.")],
    hash_format: Annotated[str, typer.Option("--format", help="pdq or md5")] = "pdq",
    json_out: JsonFlag = False,
) -> None:
    """Import a hash list shared by another system (StopNCII-style banks, HMA exports)."""
    results = intake.import_hash_list(open_workspace(), case_id, list_file, hash_format)
    failed = [r for r in results if r.error]
    if json_out:
        emit_json([r.as_dict() for r in results])
    else:
        for r in failed:
            out.print(f"[red]line {r.line}[/red]: {r.error}", highlight=False)
        out.print(f"{len(results) - len(failed)} imported, {len(failed)} rejected")
    raise typer.Exit(1 if failed else 0)


@ref_app.command("export")
@refusals
def ref_export(
    hash_format: Annotated[str, typer.Option("--format", help="pdq or md5")] = "pdq",
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export reference hashes as `hash,ref-ID` lines, the format `ref import` reads."""
    lines = intake.export_hash_list(open_workspace(), hash_format, case_id)
    text = "".join(line + "\n" for line in lines)
    if output:
        output.write_text(text)
        err.print(f"wrote {len(lines)} hashes to {output}")
    else:
        sys.stdout.write(text)


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


# ---------------------------------------------------------------- hash / scan


@app.command("hash")
def hash_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Print the signals of each file without storing anything.

    Example: `ansim hash photo.jpg --json`
    """
    from casework.files import expand_paths

    results = []
    for path in expand_paths(paths):
        try:
            signals = hash_file(path, hash_options(full_decode))
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
    if json_out:
        emit_json(results)
    else:
        for r in results:
            if r["error"]:
                out.print(f"[red]failed[/red] {r['path']}: {r['error']}", highlight=False)
            else:
                shown = ", ".join(f"{k}={v}" for k, v in r["signals"].items())
                out.print(f"{r['path']} [{r['modality']}] {shown}", highlight=False)
    raise typer.Exit(1 if any(r["error"] for r in results) else 0)


@app.command()
@refusals
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Match but record nothing.")] = False,
    full_decode: Annotated[bool, typer.Option(help="Decode images at full size (slower).")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Fingerprint collected files, match them against every reference, queue the copies.

    Example: `ansim scan ~/collected/forum-dump/ --json`
    """
    workspace = open_workspace()
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


# ---------------------------------------------------------------- queue


@queue_app.command("list")
@refusals
def queue_list(
    status: Annotated[str | None, typer.Option(help="Only items in this status.")] = None,
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List takedown items. Example: `ansim queue list --status new --case C-2026-0001`"""
    items = queue.list_queue(open_workspace(), status, case_id)
    if json_out:
        emit_json(items)
        return
    table = Table("id", "status", "case", "reference", "location", "detected")
    for item in items:
        location = item.get("url") or item.get("path")
        table.add_row(
            str(item["id"]), item["status"], item["case_id"], str(item["reference_id"]), location,
            item["detected_at"][:19],
        )  # fmt: skip
    out.print(table)


@queue_app.command("show")
@refusals
def queue_show(item_id: int, json_out: JsonFlag = False) -> None:
    """Show one takedown item with its match evidence and status history."""
    shown = queue.show_item(open_workspace(), item_id)
    if json_out:
        emit_json(shown)
        return
    for key, value in shown.items():
        if key != "history":
            out.print(f"[bold]{key}[/bold]: {value}", highlight=False)
    for event in shown["history"]:
        out.print(f"  {event['at'][:19]} {event['from'] or '-'} -> {event['to']} by {event['by']}")


@queue_app.command("confirm")
@refusals
def queue_confirm(
    item_id: int,
    note: Annotated[str | None, typer.Option(help="Why it is a copy.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """An analyst confirms the match is the reported material (needed before any notice)."""
    shown = queue.set_status(open_workspace(), item_id, "confirmed", note)
    emit_json(shown) if json_out else out.print(f"item {item_id} confirmed")


@queue_app.command("reject")
@refusals
def queue_reject(
    item_id: int,
    reason: Annotated[str, typer.Option(help="Why it is not a copy.")],
    json_out: JsonFlag = False,
) -> None:
    """Reject a false match, with the reason."""
    shown = queue.set_status(open_workspace(), item_id, "rejected", reason)
    emit_json(shown) if json_out else out.print(f"item {item_id} rejected")


# ---------------------------------------------------------------- audit / index


@audit_app.command("verify")
@refusals
def audit_verify(json_out: JsonFlag = False) -> None:
    """Check the whole audit chain; exits 1 if any row was edited, deleted or reordered."""
    workspace = open_workspace()
    with workspace.store.session() as session:
        checked, problems = audit.verify(session, workspace.home.audit_head_file)
    result = {"entries": checked, "ok": not problems, "problems": [p.__dict__ for p in problems]}
    if json_out:
        emit_json(result)
    elif problems:
        for p in problems:
            out.print(
                f"[red]entry {p.seq if p.seq is not None else '-'}[/red]: {p.message}",
                highlight=False,
            )
        out.print(f"audit chain BROKEN: {len(problems)} problems in {checked} entries")
    else:
        out.print(f"audit chain intact: {checked} entries")
    raise typer.Exit(1 if problems else 0)


@index_app.command("rebuild")
@refusals
def index_rebuild(json_out: JsonFlag = False) -> None:
    """Recreate every index from the store (the store is the source of truth)."""
    workspace = open_workspace()
    with workspace.session() as session:
        sizes = workspace.banks.rebuild(session)
        audit.record(session, workspace.actor, "index.rebuild", "index", sizes)
    emit_json(sizes) if json_out else out.print(f"rebuilt: {sizes}")


@index_app.command("status")
@refusals
def index_status(json_out: JsonFlag = False) -> None:
    """Entries per index, after checking each against the store."""
    workspace = open_workspace()
    with workspace.store.session() as session:
        rebuilt = workspace.banks.ensure_consistent(session)
    result = {"sizes": workspace.banks.sizes(), "rebuilt": rebuilt}
    emit_json(result) if json_out else out.print(result)


# ---------------------------------------------------------------- bench


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
    from benchmarks.audio import DEFAULT_HELD_OUT, BenchConfig, report_markdown, run_audio_bench

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
