"""ansim's command line: one command group per noun.

Exit codes: 0 all good, 1 some items failed (or a check found problems), 2 the request
itself was refused (unknown id, bad value, no ansim home).
Every command that prints results takes --json; progress goes to stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from casework import (
    audit,
    cases,
    confirmations,
    crawling,
    hosts,
    intake,
    notice_service,
    queue,
    recheck_service,
    report_service,
    retention,
    scanning,
)
from casework.crypto import KeyProblem
from casework.errors import CaseworkError
from casework.models import CASE_TYPES, SERVICE_KINDS
from casework.smtp import SmtpSettings
from casework.workspace import NotInitialized, init_workspace, open_workspace
from detector.errors import MediaError
from detector.hashing import HashOptions, hash_file
from detector.image import ImageOptions
from detector.video import REFERENCE_SECONDS_PER_HASH, VideoOptions
from detector.vpdq_format import format_videos

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
host_app = typer.Typer(help="Hosts: where removal notices go.", no_args_is_help=True)
notice_app = typer.Typer(help="Removal notices: draft, send.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(ref_app, name="ref")
app.add_typer(queue_app, name="queue")
app.add_typer(audit_app, name="audit")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")
app.add_typer(host_app, name="host")
app.add_typer(notice_app, name="notice")

crawl_app = typer.Typer(
    help="Crawls: fetch sites, fingerprint what is there.", no_args_is_help=True
)
evidence_app = typer.Typer(help="Sealed WARC evidence of matches.", no_args_is_help=True)
app.add_typer(crawl_app, name="crawl")
app.add_typer(evidence_app, name="evidence")

model_app = typer.Typer(
    help="Learned models: training the image copy descriptor.", no_args_is_help=True
)
app.add_typer(model_app, name="model")

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AllowLoopback = Annotated[
    bool,
    typer.Option(
        "--allow-loopback",
        help="Allow 127.0.0.0/8 and ::1 (tests, local use); private ranges stay refused.",
    ),
]
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


def format_vpdq_texts(videos: list[tuple[str, str]]) -> str:
    """Exported vPDQ texts: a single video plain, several under `# ref-ID` lines."""
    if len(videos) == 1:
        return videos[0][1]
    return "".join(f"# {label}\n{text}" for label, text in videos)


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
        typer.Option(help="Video: hash a frame every this many seconds (scans use 1 s)."),
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
        video=VideoOptions(seconds_per_hash=max(0.0, seconds_per_hash)),
    )
    texts: list[tuple[str, str]] = [("--text", text)] if text is not None else []
    files = list(paths or [])
    if lines:
        from casework.files import expand_paths

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
    from casework.files import expand_paths

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


@app.command()
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
    """An analyst confirms the match is the reported material (needed before any notice).

    Case types set to need two analysts (`ansim queue policy`) stay `new` until a second,
    different analyst confirms too.
    """
    shown = confirmations.confirm(open_workspace(), item_id, note)
    if json_out:
        emit_json(shown)
    elif shown["status"] == "confirmed":
        out.print(f"item {item_id} confirmed")
    else:
        have, need = len(shown["confirmations"]), shown["confirmations_required"]
        out.print(f"item {item_id}: confirmation {have} of {need} recorded; needs another analyst")


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


def _shared_data() -> Path:
    default = Path(__file__).resolve().parent.parent / "shared" / "data"
    return Path(os.environ.get("ANSIM_SHARED_DATA") or default)


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
    peer: Annotated[bool, typer.Option(help="Also run Meta's vpdq package.")] = True,
    interop: Annotated[bool, typer.Option(help="Hash --data at every frame vs Meta.")] = True,
    json_out: JsonFlag = False,
) -> None:
    """Video recall/precision per transform, hashing speed and vPDQ interop, vs Meta's vpdq.

    Example: `ansim bench video --data ../shared/data/threatexchange/tmk/sample-videos
    --out bench-out/video` (about 10 minutes on 2 cores; needs `pip install vpdq`, which
    builds against Debian's libav*-dev packages, for the peer).
    """
    from benchmarks.video import VideoBenchConfig, run_video_benchmark

    if not data.is_dir():
        raise CaseworkError(f"--data {data} is not a folder")
    if peer:
        try:
            import vpdq  # noqa: F401
        except ImportError as exc:
            raise CaseworkError(
                "the peer needs Meta's vpdq package: `make bench-video-deps`, or --no-peer"
            ) from exc
    shared = _shared_data()
    config = VideoBenchConfig(
        data=data,
        out=out,
        images=images or shared / "images",
        vpdq_hashes=vpdq_hashes or shared / "threatexchange" / "vpdq" / "sample-hashes",
        synthesized=synthesized,
        synth_seconds=seconds,
        negatives=negatives,
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
    from benchmarks import text as text_bench

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
    from benchmarks.text_semantic import run_semantic_bench
    from detector.text_semantic import SemanticUnavailable

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


# ---------------------------------------------------------------- bench


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
    from benchmarks.images import ImageBenchConfig, render_markdown, run_image_benchmark
    from benchmarks.images import write_report as write_image_report

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


# ---------------------------------------------------------------- casework: policy, hosts,
# notices, re-checks, reports, case close


@queue_app.command("policy")
@refusals
def queue_policy(
    case_type: Annotated[str | None, typer.Argument(help="Case type to set.")] = None,
    confirmations_required: Annotated[
        int | None, typer.Option("--confirmations", help="Analysts who must confirm (1-5).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show or set how many analysts must confirm items of a case type.

    Example: `ansim queue policy child-exploitation --confirmations 2`
    """
    workspace = open_workspace()
    if case_type is None:
        current = confirmations.list_rules(workspace)
    elif confirmations_required is None:
        raise typer.BadParameter("give --confirmations N to set it", param_hint="--confirmations")
    else:
        current = confirmations.set_rule(workspace, case_type, confirmations_required)
    if json_out:
        emit_json(current)
        return
    for name, required in current.items():
        out.print(f"{name}: {required} analyst(s)")


def _smtp_settings(smtp_url: str | None) -> SmtpSettings:
    try:
        return SmtpSettings.from_url(smtp_url) if smtp_url else SmtpSettings.from_env()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--smtp") from exc


SmtpOption = Annotated[
    str | None,
    typer.Option("--smtp", help="smtp://HOST:PORT, smtp+starttls://... (default $ANSIM_SMTP_URL)"),
]
SenderOption = Annotated[
    str | None, typer.Option("--sender", help="From address (default $ANSIM_NOTICE_FROM).")
]
OrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization name (default $ANSIM_NOTICE_ORG).")
]


@queue_app.command("recheck")
@refusals
def queue_recheck(
    resend_after: Annotated[float, typer.Option(help="Hours before a notice is resent.")] = 24,
    escalate_after: Annotated[float, typer.Option(help="Days online before escalation.")] = 7,
    resend: Annotated[
        bool, typer.Option(help="Resend due notices now (needs --smtp and --sender).")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds per URL.")] = 15,
    smtp_url: SmtpOption = None,
    sender_email: SenderOption = None,
    org: OrgOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Fetch every notified URL: gone -> removed, still there -> still_online (resent after
    --resend-after hours, escalated after --escalate-after days), unreachable -> unchanged.

    For a nightly cron: `ansim queue recheck --json >> recheck.log`. Exits 1 when a URL
    could not be checked or a resend failed.
    """
    from datetime import timedelta

    from casework.recheck import RecheckPolicy

    workspace = open_workspace()
    policy = RecheckPolicy(
        resend_after=timedelta(hours=resend_after), escalate_after=timedelta(days=escalate_after)
    )
    smtp = sender = None
    if resend and (smtp_url or os.environ.get("ANSIM_SMTP_URL")):
        smtp = _smtp_settings(smtp_url)
        sender = notice_service.sender_from_env(sender_email, org)
    with progress_bar() as progress:
        task = progress.add_task("re-checking", total=None, current="")
        result = recheck_service.recheck(
            workspace,
            recheck_service.fetch_from_env(timeout),
            policy,
            smtp,
            sender,
            on_item=lambda c: progress.update(task, advance=1, current=c["url"][-40:]),
        )
    shown = result.as_dict()
    if json_out:
        emit_json(shown)
    else:
        for c in shown["checked"]:
            change = f"{c['before']} -> {c['after']}" if c["before"] != c["after"] else c["after"]
            out.print(f"{c['id']:>5} {c['verdict']:<11} {change:<28} {c['url']}", highlight=False)
        unsent = "" if smtp else " (no --smtp: not resent)"
        out.print(
            f"{shown['gone']} gone, {shown['online']} online, {shown['unreachable']} unreachable;"
            f" {len(shown['resend_due'])} due for resend{unsent}, {len(shown['resent'])} resent"
        )
    raise typer.Exit(1 if shown["unreachable"] or shown["resend_failed"] else 0)


@host_app.command("set")
@refusals
def host_set(
    domain: str,
    abuse_email: Annotated[str | None, typer.Option(help="Where notices go.")] = None,
    form_url: Annotated[str | None, typer.Option(help="The host's reporting form.")] = None,
    lang: Annotated[str | None, typer.Option(help="Notice language: ko or en.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Register or update a host; it covers its subdomains too.

    Example: `ansim host set img.example.com --abuse-email abuse@example.com --lang ko`
    """
    shown = hosts.set_host(open_workspace(), domain, abuse_email, form_url, lang)
    emit_json(shown) if json_out else out.print(shown, highlight=False)


@host_app.command("list")
@refusals
def host_list(json_out: JsonFlag = False) -> None:
    """List registered hosts."""
    listed = hosts.list_hosts(open_workspace())
    if json_out:
        emit_json(listed)
        return
    table = Table("domain", "abuse e-mail", "form", "lang")
    for h in listed:
        table.add_row(h["domain"], h["abuse_email"] or "-", h["form_url"] or "-", h["lang"])
    out.print(table)


@notice_app.command("draft")
@refusals
def notice_draft(
    host: Annotated[str | None, typer.Option(help="Only items on this host.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for .eml files and regulator.csv.")
    ] = None,
    sender_email: SenderOption = None,
    org: OrgOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Group confirmed items per host into notices (.eml, Korean or English per host) and a
    CSV for bulk submission to the regulator. Nothing is sent.

    Example: `ansim notice draft --out notices/ --sender takedown@center.example`
    """
    sender = notice_service.sender_from_env(sender_email, org)
    result = notice_service.draft(open_workspace(), sender, out_dir, host)
    if json_out:
        emit_json(result.as_dict())
    else:
        for n in result.notices:
            out.print(f"{n['ref']}: {len(n['takedowns'])} item(s) to {n['to']} [{n['lang']}]")
        for skipped in result.skipped:
            out.print(f"[yellow]skipped[/yellow] item {skipped['id']}: {skipped['reason']}")
        if result.csv:
            out.print(f"files in {Path(result.csv).parent}", highlight=False)
    raise typer.Exit(1 if result.skipped else 0)


@notice_app.command("send")
@refusals
def notice_send(
    host: Annotated[str | None, typer.Option(help="Only notices to this host.")] = None,
    smtp_url: SmtpOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Send drafted notices by SMTP; items become notice_sent only once the server took them.

    Example: `ansim notice send --smtp smtp+starttls://user:pass@mail.center.example`
    """
    result = notice_service.send(open_workspace(), _smtp_settings(smtp_url), host)
    if json_out:
        emit_json(result.as_dict())
    else:
        for n in result.sent:
            out.print(f"sent {n['ref']} to {n['to']}: items {n['takedowns']} -> notice_sent")
        for n in result.failed:
            out.print(f"[red]failed[/red] {n['ref']} to {n['to']}: {n['error']}", highlight=False)
        for n in result.skipped:
            out.print(f"[yellow]skipped[/yellow] {n['ref']}: {n['reason']}", highlight=False)
    raise typer.Exit(1 if result.failed else 0)


@app.command("report")
@refusals
def report(
    since: Annotated[
        str | None, typer.Option(help="From this date (UTC), e.g. 2026-03-01.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this date (default: now).")] = None,
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the figures into this PNG.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Takedown figures: items by status, case type and host; services by kind; time to
    notice and to removal (median, p90, share within 24 h / 3 days / over 42 days);
    reappearance rate.

    Example: `ansim report --since 2026-03-01 --until 2026-04-01 --plot march.png`
    """
    shown = report_service.build_report(
        open_workspace(),
        report_service.parse_moment(since) if since else None,
        report_service.parse_moment(until) if until else None,
        case_id,
        plot,
    )
    if json_out:
        emit_json(shown)
        return
    _print_report(shown)


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _print_report(shown: dict[str, Any]) -> None:
    since, until = (
        (shown["window"][key] or "")[:16].replace("T", " ") for key in ("since", "until")
    )
    out.print(
        f"[bold]Takedowns detected {since or 'from the start'} to {until}[/bold]: "
        f"{shown['items']} items in {shown['cases']} cases",
        highlight=False,
    )
    for title, key in (
        ("by status", "by_status"),
        ("by case type", "by_case_type"),
        ("by host", "by_host"),
        ("services", "services_by_kind"),
    ):
        counts = ", ".join(f"{k} {v}" for k, v in shown[key].items()) or "-"
        out.print(f"  {title}: {counts}", highlight=False)
    notice, removal = shown["detection_to_notice"], shown["detection_to_removal"]
    out.print(
        f"  detection -> notice: {notice['count']} items, median {_hours(notice['median_hours'])}"
        f", p90 {_hours(notice['p90_hours'])}"
    )
    out.print(
        f"  detection -> removal: {removal['count']} items, median "
        f"{_hours(removal['median_hours'])}, p90 {_hours(removal['p90_hours'])}; within 24 h "
        f"{_share(removal['share_within_24h'])}, within 3 days "
        f"{_share(removal['share_within_3_days'])}, over 42 days "
        f"{_share(removal['share_over_42_days'])}; still online after 42 days: "
        f"{removal['open_over_42_days']}"
    )
    again = shown["reappearance"]
    out.print(
        f"  reappeared: {again['reappeared']} of {again['removed']} removed "
        f"({_share(again['rate'])})"
    )
    if shown["clock_skew_events"]:
        out.print(
            f"  [yellow]{shown['clock_skew_events']} events stamped before detection[/yellow]"
        )
    if shown.get("plot"):
        out.print(f"  plot: {shown['plot']}", highlight=False)


@case_app.command("close")
@refusals
def case_close(
    case_id: str,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also delete contact, pseudonym, signals (from every index) and evidence.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before purging.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Close a case; with --purge, delete what identifies it (cannot be undone, audited).

    Example: `ansim case close C-2026-0001 --purge --yes`
    """
    if purge and not yes:
        typer.confirm(f"Purge {case_id}? This cannot be undone.", abort=True)
    shown = retention.close_case(open_workspace(), case_id, purge)
    if json_out:
        emit_json(shown)
    elif purge:
        out.print(f"case {case_id} closed and purged: {shown['deleted']}", highlight=False)
    else:
        out.print(f"case {case_id} closed")


# ---------------------------------------------------------------- crawl, evidence


def print_crawl_summary(summary: crawling.CrawlSummary, json_out: bool, verb: str) -> None:
    data = summary.as_dict()
    if json_out:
        emit_json(data)
        return
    for m in data["match_list"]:
        out.print(
            f"[bold]match[/bold] {m['url']} -> case {m['case_id']}, reference "
            f"{m['reference_id']}: {m['explanation']}; queue item {m['takedown_id']}",
            highlight=False,
        )
    outcomes = ", ".join(f"{k} {v}" for k, v in data["outcomes"].items())
    out.print(
        f"run {data['run_id']}: {verb} {data['pages']} pages, {data['media']} media "
        f"({data['media_hashed']} hashed, {data['media_duplicate_content']} duplicate content), "
        f"{data['matches']} matches, {len(data['takedowns'])} queue items, "
        f"{data['elapsed_s']:.1f} s; outcomes: {outcomes}; log {data['log_path']}",
        highlight=False,
    )


def read_seeds(seeds: list[str]) -> list[str]:
    """URLs as given; a name that is not a URL is a file with one URL per line."""
    urls: list[str] = []
    for seed in seeds:
        if "://" in seed:
            urls.append(seed)
            continue
        try:
            lines = Path(seed).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CaseworkError(f"seed {seed!r} is neither a URL nor a readable file") from exc
        urls += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return urls


ImageVerification = Annotated[
    str,
    typer.Option(
        help="Local-feature verification of crawled images: triage (only images with a "
        "candidate that PDQ or the descriptor leave open), all (as `ansim scan`), off."
    ),
]


@crawl_app.command("run")
@refusals
def crawl_run(
    seeds: Annotated[
        list[str] | None, typer.Option("--seeds", help="Seed URLs, or files of URLs.")
    ] = None,
    max_pages: Annotated[int, typer.Option(help="Stop after this many pages.")] = 1000,
    max_depth: Annotated[int, typer.Option(help="Links followed from the seeds.")] = 3,
    scope: Annotated[str, typer.Option(help="same-site or allow-list.")] = "same-site",
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="Host (and subdomains) in scope.")
    ] = None,
    ignore_robots: Annotated[
        list[str] | None,
        typer.Option("--ignore-robots-for", help="Host whose robots.txt is overridden (logged)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the last unfinished crawl.")
    ] = False,
    delay: Annotated[
        float, typer.Option(help="Minimum seconds between requests to a host.")
    ] = 0.25,
    host_concurrency: Annotated[int, typer.Option(help="Parallel requests per host.")] = 4,
    workers: Annotated[int, typer.Option(help="Pages in flight at once.")] = 16,
    hash_processes: Annotated[
        int, typer.Option(help="Fingerprinting processes (0: one per CPU, 1: in-process).")
    ] = 0,
    max_response_mb: Annotated[int, typer.Option(help="Cap per response, MiB.")] = 64,
    max_crawl_gb: Annotated[float, typer.Option(help="Cap on bytes fetched per crawl, GiB.")] = 20,
    image_verification: ImageVerification = "triage",
    allow_loopback: AllowLoopback = False,
    json_out: JsonFlag = False,
) -> None:
    """Crawl from seed URLs: fetch pages (robots.txt, politeness, SSRF guard), fingerprint
    every image/video/audio and page text, queue matches with sealed WARC evidence.

    The frontier lives in the store: after any interruption (even kill -9) `--resume`
    continues without losing or duplicating anything. A log file is written per run.

    Examples: `ansim crawl run --seeds https://forum.example/ --max-pages 500`,
    `ansim crawl run --seeds seeds.txt --scope allow-list --allow-host img.example`,
    `ansim crawl run --resume --json`
    """
    workspace = open_workspace()
    options = None
    if not resume:
        if not seeds:
            raise CaseworkError("give --seeds (URLs or files of URLs), or --resume")
        options = crawling.CrawlOptions(
            seeds=read_seeds(seeds),
            max_pages=max_pages,
            max_depth=max_depth,
            scope=scope,
            allow_hosts=allow_host or [],
            allow_loopback=allow_loopback,
            ignore_robots_hosts=ignore_robots or [],
            max_response_bytes=max_response_mb << 20,
            max_crawl_bytes=int(max_crawl_gb * (1 << 30)),
            workers=workers,
            host_concurrency=host_concurrency,
            min_delay_s=delay,
            hash_processes=hash_processes,
            image_verification=image_verification,
        )
        try:
            crawling.Scope(scope)
        except ValueError as exc:
            raise CaseworkError(str(exc)) from exc
    progress = Progress(
        TextColumn("crawling"),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task("crawl", total=None, stats="")

        def show(summary: crawling.CrawlSummary) -> None:
            stats = (
                f"{summary.pages} pages, {summary.media} media, {summary.matches} matches, "
                f"{sum(summary.outcomes.values())} urls finished"
            )
            progress.update(task, stats=stats)

        summary = crawling.run_crawl(workspace, options, resume=resume, on_progress=show)
    print_crawl_summary(summary, json_out, verb="crawled")
    failures = {"internal_error", "media_error"}
    raise typer.Exit(1 if any(summary.outcomes.get(k) for k in failures) else 0)


@evidence_app.command("export")
@refusals
def evidence_export(
    evidence_id: int,
    out_dir: Annotated[Path, typer.Argument(help="Folder for the WARC file and its manifest.")],
    json_out: JsonFlag = False,
) -> None:
    """Decrypt one evidence bundle (listed by `ansim queue show ID`) for police or lawyers:
    the WARC file and its manifest of SHA-256 digests, fetch times and resolved IPs.
    Every digest is checked on the way out; the export is audited.

    Example: `ansim evidence export 3 ~/handover/C-2026-0001/`
    """
    result = crawling.export_evidence(open_workspace(), evidence_id, out_dir)
    if json_out:
        emit_json(result)
    else:
        for path in result["files"]:
            out.print(f"wrote {path}", highlight=False)
        out.print(f"WARC SHA-256 {result['warc_sha256']} verified")


@bench_app.command("crawl")
@refusals
def bench_crawl(
    out_dir: Annotated[Path, typer.Option("--out", help="Site, scratch home and results.")],
    workers: Annotated[int, typer.Option(help="Pages in flight at once.")] = 32,
    pages: Annotated[
        int, typer.Option(help="Site size: pages (5 media each); smaller for profiling.")
    ] = 1000,
    image_verification: ImageVerification = "triage",
    json_out: JsonFlag = False,
) -> None:
    """Crawl a generated local site of 1,000 pages / 5,000 media from ../shared/data with
    planted transformed copies of references: pages/s, media/s, peak memory, time to the
    last queued match, planted found vs missed (target: whole site < 120 s).

    Example: `ansim bench crawl --out bench-out/crawl` (`--pages 100` for a quick profile)
    """
    from benchmarks.crawl_bench import run_crawl_bench

    result = run_crawl_bench(shared_data_dir(), out_dir, workers, pages, image_verification)
    emit_json(result) if json_out else out.print_json(data=result)


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
    from benchmarks.retrohunt_bench import run_retrohunt_bench

    result = run_retrohunt_bench(shared_data_dir(), out_dir, items)
    emit_json(result) if json_out else out.print_json(data=result)


def shared_data_dir() -> Path:
    import os

    default = Path(__file__).resolve().parent.parent / "shared" / "data"
    path = Path(os.environ.get("ANSIM_SHARED_DATA") or default)
    if not path.is_dir():
        raise CaseworkError(f"shared data not found at {path} (set ANSIM_SHARED_DATA)")
    return path


# ---------------------------------------------------------------- model


def default_images_root() -> Path:
    import os

    shared = (
        os.environ.get("ANSIM_SHARED_DATA")
        or Path(__file__).resolve().parent.parent / "shared" / "data"
    )
    return Path(shared) / "images"


@model_app.command("train")
def model_train(
    data: Annotated[
        Path | None, typer.Option(help="The shared images folder (default ../shared/data/images).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps (batches).")] = 700,
    batch_size: Annotated[int, typer.Option(help="Photos per batch (two views each).")] = 48,
    run_dir: Annotated[
        Path, typer.Option(help="Checkpoints and log; an existing checkpoint is resumed.")
    ] = Path("runs/descriptor"),
    output: Annotated[Path, typer.Option(help="Where the final weights go.")] = Path(
        "models/weights/descriptor.pt"
    ),
    seed: Annotated[int, typer.Option(help="Seed of every batch and the initial weights.")] = 17,
    threads: Annotated[int, typer.Option(help="torch threads for the network.")] = 1,
    workers: Annotated[int, typer.Option(help="Processes rendering augmented views.")] = 1,
    json_out: JsonFlag = False,
) -> None:
    """Train the copy-detection descriptor from scratch on bsds500/train + urban100.

    Resumes from RUN_DIR/checkpoint.pt when one exists, so an interrupted run loses at
    most the steps since the last checkpoint. The committed weights came from the defaults.

    Example: `nice ansim model train --steps 700` (about an hour on 2 busy CPU cores)
    """
    from models.train import TrainConfig, train

    config = TrainConfig(
        data_root=data or default_images_root(),
        steps=steps,
        batch_size=batch_size,
        run_dir=run_dir,
        output=output,
        seed=seed,
        threads=threads,
        workers=workers,
    )
    with progress_bar() as progress:
        task = progress.add_task("training", total=steps, current="")

        def show(report: Any) -> None:
            progress.update(task, completed=report.step, current=f"loss {report.loss:.3f}")

        try:
            weights = train(config, show)
        except (FileNotFoundError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc
    result = {"weights": str(weights), "steps": steps, "run_dir": str(run_dir)}
    emit_json(result) if json_out else out.print(f"weights written to {weights}")


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
    json_out: JsonFlag = False,
) -> None:
    """Hard transforms (crops, rotations, pads, memes, screenshots, pastes, perspective):
    PDQ alone vs the descriptor alone vs ansim's full decision, measured on bsds500/test.

    Example: `ansim bench robust --calibrate` (full run), `ansim bench robust --limit 20`
    """
    from benchmarks.hard_transforms import EASY_TRANSFORMS, HARD_TRANSFORMS
    from benchmarks.robust_images import (
        RobustBenchConfig,
        markdown_table,
        run_benchmark,
        write_report,
    )
    from detector.image_decision import CALIBRATION_FILE

    known = {**HARD_TRANSFORMS, **EASY_TRANSFORMS}
    unknown = [t for t in transform or [] if t not in known]
    if unknown:
        err.print(f"[red]error:[/red] unknown transform(s) {unknown}; known: {', '.join(known)}")
        raise typer.Exit(2)
    config = RobustBenchConfig(
        data_root=data or default_images_root(),
        limit=limit,
        transforms=tuple(transform) if transform else tuple(known),
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
