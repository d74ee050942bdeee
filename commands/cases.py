"""`ansim case ...`: support cases, the services given to them, closing with purge."""

from __future__ import annotations

from typing import Annotated, Any

import typer
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
from ansim.commands.display import (
    Column,
    day,
    fitted_table,
    print_fields,
    text_or_dash,
    when,
    yes_no,
)
from ansim.commands.references import reference_rows, references_table
from ansim.commands.workspace import open_listing, open_workspace
from ansim.i18n import _
from ansim.store.vocabulary import CASE_TYPES, SERVICE_KINDS

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
    from ansim.casework import cases

    contact = read_private_text(contact_file, ask_contact, "Contact details")
    workspace = open_workspace()
    case_id = cases.open_case(workspace, case_type, pseudonym, contact, assigned_to)
    if json_out:
        emit_json({"case_id": case_id})
    else:
        out.print(_("opened case {case_id}").format(case_id=case_id))


@case_app.command("list")
@refusals
def case_list(
    status: Annotated[str | None, typer.Option(help="open or closed")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List cases with their reference and open-takedown counts."""
    from ansim.casework import listings

    with open_listing() as store:
        summaries = [s.as_dict() for s in listings.list_cases(store, status)]
    if json_out:
        emit_json(summaries)
        return
    print_case_list(summaries)


def print_case_list(summaries: list[dict[str, Any]]) -> None:
    columns = [
        Column(_("case"), key=True),
        Column(_("type"), keep=4),
        Column(_("status"), keep=5),
        Column(_("pseudonym"), keep=3),
        Column(_("assigned"), keep=0),
        Column(_("references"), keep=1),
        Column(_("open takedowns"), keep=2),
    ]
    rows = [
        (
            s["case_id"],
            _(s["type"]),
            _(s["status"]),
            s["pseudonym"] or "-",
            s["assigned_to"] or "-",
            str(s["references"]),
            str(s["open_takedowns"]),
        )  # fmt: skip
        for s in summaries
    ]
    out.print(fitted_table(out, columns, rows))


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
    from ansim.casework import cases

    workspace = open_workspace()
    shown = cases.show_case(workspace, case_id, reveal)
    with workspace.listing() as store:
        shown["reference_list"] = reference_rows(store, case_id, None)
    if json_out:
        emit_json(shown)
        return
    print_case(shown)


def print_case(shown: dict[str, Any]) -> None:
    """One case as labelled fields, then its references."""
    if "contact" in shown:
        contact = text_or_dash(shown["contact"])
    elif shown["has_contact"]:
        contact = _("stored encrypted (--reveal shows it)")
    else:
        contact = "-"
    print_fields(
        out,
        [
            (_("case"), shown["case_id"]),
            (_("type"), _(shown["type"])),
            (_("status"), _(shown["status"])),
            (_("pseudonym"), text_or_dash(shown["pseudonym"])),
            (_("assigned"), text_or_dash(shown["assigned_to"])),
            (_("opened"), when(shown["created_at"])),
            (_("contact"), contact),
            (_("open takedowns"), str(shown["open_takedowns"])),
            (
                _("services"),
                [
                    f"#{s['id']} {day(s['date'])}  {_(s['kind'])}"
                    + (f": {s['note']}" if s["note"] else "")
                    for s in shown["services"]
                ],
            ),
            (_("references"), str(shown["references"])),
        ],
    )
    if shown["reference_list"]:
        out.print(references_table(shown["reference_list"], with_case=False))


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
    from ansim.casework import cases

    note = read_private_text(note_file, ask_note, "Note") or ""
    print_service(case_id, cases.add_service(open_workspace(), case_id, kind, note), json_out)


def print_service(case_id: str, service_id: int, json_out: bool) -> None:
    if json_out:
        emit_json({"case_id": case_id, "service_id": service_id})
    else:
        out.print(
            _("recorded service {service_id} for {case_id}").format(
                service_id=service_id, case_id=case_id
            )
        )


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
    from ansim.casework import retention

    if purge and not yes:
        typer.confirm(
            _("Purge {case_id}? This cannot be undone.").format(case_id=case_id), abort=True
        )
    print_closed(retention.close_case(open_workspace(), case_id, purge), json_out)


def print_closed(shown: dict[str, Any], json_out: bool) -> None:
    """A closed case, and with a purge what it deleted."""
    case_id = shown["case_id"]
    if json_out:
        emit_json(shown)
    elif shown["purged"]:
        out.print(_("case {case_id} closed and purged; deleted:").format(case_id=case_id))
        print_fields(
            out,
            [
                (_(key.replace("_", " ")), deleted_count(value))
                for key, value in shown["deleted"].items()
            ],
            2,
        )
    else:
        out.print(_("case {case_id} closed").format(case_id=case_id))


def deleted_count(value: object) -> str:
    """What a purge deleted: a count, or yes/no for the contact and pseudonym."""
    return yes_no(value) if isinstance(value, bool) else str(value)
