"""`ansim case ...`: support cases, the services given to them, closing with purge."""

from __future__ import annotations

from typing import Annotated

import typer
from ansim.casework import cases, retention
from ansim.commands.common import (
    AskContact,
    AskNote,
    ContactFile,
    JsonFlag,
    NoteFile,
    emit_json,
    out,
    read_private_text,
    refusals,
)
from ansim.pipeline.workspaces import open_workspace
from ansim.store.tables import CASE_TYPES, SERVICE_KINDS
from rich.table import Table

case_app = typer.Typer(help="Support cases and the services given to them.", no_args_is_help=True)


@case_app.command("open")
@refusals
def case_open(
    case_type: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(CASE_TYPES)}.")],
    pseudonym: Annotated[
        str | None, typer.Option(help="A name to call the case by (never the real name).")
    ] = None,
    contact_file: ContactFile = None,
    ask_contact: AskContact = False,
    assigned_to: Annotated[
        str | None, typer.Option(help="Staff member in charge (default: you).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Open a support case.

    Contact details are stored encrypted; they come from a file, stdin or a hidden prompt.

    Example: `ansim case open --type digital-sex-crime --pseudonym 'Blue' --ask-contact`
    """
    contact = read_private_text(contact_file, ask_contact, "Contact details")
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
            out.print(f"[bold]{key}[/bold]: {shown(value)}", highlight=False)
    for service in shown["services"]:
        day = service["date"][:10]
        out.print(f"  service {service['id']}: {service['kind']} on {day} {shown(service['note'])}")


@case_app.command("service")
@refusals
def case_service(
    case_id: str,
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(SERVICE_KINDS)}.")],
    note_file: NoteFile = None,
    ask_note: AskNote = False,
    json_out: JsonFlag = False,
) -> None:
    """Record a support service given to a case; the note (what was done) is encrypted.

    Example: `echo 'filed complaint' | ansim case service C-2026-0001 --kind legal --note-file -`
    """
    note = read_private_text(note_file, ask_note, "Note") or ""
    service_id = cases.add_service(open_workspace(), case_id, kind, note)
    if json_out:
        emit_json({"case_id": case_id, "service_id": service_id})
    else:
        out.print(f"recorded service {service_id} for {case_id}")


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
