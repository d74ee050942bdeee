"""`ansim queue ...`: the takedown queue, confirmations, policy and re-checks."""

from __future__ import annotations

from typing import Annotated

import typer
from ansim.casework import confirmations, notice_service, queue
from ansim.commands.common import (
    AllowLoopback,
    AskNote,
    AskReason,
    JsonFlag,
    NoteFile,
    ReasonFile,
    emit_json,
    out,
    progress_bar,
    read_private_text,
    refusals,
    shown,
)
from ansim.commands.notices import OrgOption, SenderOption, SmtpOption, smtp_settings
from ansim.pipeline import recheck_service
from ansim.pipeline.workspaces import open_workspace
from rich.table import Table

queue_app = typer.Typer(help="The takedown queue.", no_args_is_help=True)


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
            str(item["id"]), item["status"], item["case_id"], str(item["reference_id"]),
            shown(location),
            item["detected_at"][:19],
        )  # fmt: skip
    out.print(table)


@queue_app.command("show")
@refusals
def queue_show(item_id: int, json_out: JsonFlag = False) -> None:
    """Show one takedown item with its match evidence and status history."""
    item = queue.show_item(open_workspace(), item_id)
    if json_out:
        emit_json(item)
        return
    for key, value in item.items():
        if key != "history":
            out.print(f"[bold]{key}[/bold]: {shown(value)}", highlight=False)
    for event in item["history"]:
        out.print(
            f"  {event['at'][:19]} {event['from'] or '-'} -> {event['to']} by {shown(event['by'])}"
        )


@queue_app.command("confirm")
@refusals
def queue_confirm(
    item_id: int,
    note_file: NoteFile = None,
    ask_note: AskNote = False,
    json_out: JsonFlag = False,
) -> None:
    """An analyst confirms the match is the reported material (needed before any notice).

    Case types set to need two analysts (`ansim queue policy`) stay `new` until a second,
    different analyst confirms too.
    """
    note = read_private_text(note_file, ask_note, "Why it is a copy")
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
    reason_file: ReasonFile = None,
    ask_reason: AskReason = False,
    json_out: JsonFlag = False,
) -> None:
    """Reject a false match, with the reason (from a file, stdin or a prompt).

    Example: `echo 'different person' | ansim queue reject 12 --reason-file -`
    """
    reason = read_private_text(reason_file, ask_reason, "Why it is not a copy")
    if not reason:
        raise typer.BadParameter("a rejection needs a reason: --reason-file or --ask-reason")
    shown = queue.set_status(open_workspace(), item_id, "rejected", reason)
    emit_json(shown) if json_out else out.print(f"item {item_id} rejected")


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
    allow_loopback: AllowLoopback = False,
    gone_days: Annotated[
        int,
        typer.Option(
            min=1,
            max=30,
            help="Removed only after gone answers on this many different days (one gone "
            "answer may be a host hiding the content from the checker).",
        ),
    ] = 2,
    json_out: JsonFlag = False,
) -> None:
    """Fetch every notified URL, as an ordinary browser (ANSIM_RECHECK_USER_AGENT names the
    checker instead): gone on --gone-days different days -> removed, still there ->
    still_online (resent after --resend-after hours, escalated after --escalate-after days),
    unreachable or inconclusive -> unchanged.

    For a nightly cron: `ansim queue recheck --json >> recheck.log`. Exits 1 when a URL
    could not be checked or a resend failed.
    """
    from datetime import timedelta

    from ansim.casework.recheck import RecheckPolicy

    workspace = open_workspace()
    policy = RecheckPolicy(
        resend_after=timedelta(hours=resend_after),
        escalate_after=timedelta(days=escalate_after),
        gone_days_required=gone_days,
    )
    smtp = sender = None
    settings = workspace.settings
    if resend and (smtp_url or settings.smtp_url):
        smtp = smtp_settings(smtp_url, settings)
        sender = notice_service.notice_sender(settings, sender_email, org)
    with progress_bar() as progress:
        task = progress.add_task("re-checking", total=None, current="")
        result = recheck_service.recheck(
            workspace,
            recheck_service.RecheckFetch(
                timeout_s=timeout,
                allow_loopback=allow_loopback or settings.allow_loopback,
                user_agent=settings.recheck_user_agent or recheck_service.BROWSER_USER_AGENT,
            ),
            policy,
            smtp,
            sender,
            on_item=lambda c: progress.update(task, advance=1, current=c["url"][-40:]),
        )
    report = result.as_dict()
    if json_out:
        emit_json(report)
    else:
        for c in report["checked"]:
            change = f"{c['before']} -> {c['after']}" if c["before"] != c["after"] else c["after"]
            out.print(
                f"{c['id']:>5} {c['verdict']:<11} {change:<28} {shown(c['url'])}", highlight=False
            )
        unsent = "" if smtp else " (no --smtp: not resent)"
        out.print(
            f"{report['gone']} gone, {report['online']} online, "
            f"{report['unreachable']} unreachable;"
            f" {len(report['resend_due'])} due for resend{unsent}, {len(report['resent'])} resent"
        )
    raise typer.Exit(1 if report["unreachable"] or report["resend_failed"] else 0)
