"""`ansim queue ...`: the takedown queue, confirmations, policy and re-checks."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from ansim.commands.common import (
    AllowLoopback,
    AskNote,
    AskReason,
    JsonFlag,
    NoteFile,
    ReasonFile,
    emit_json,
    err,
    out,
    progress_bar,
    read_private_text,
    refusals,
)
from ansim.commands.display import (
    Column,
    FieldValue,
    aligned,
    fitted_table,
    number,
    print_fields,
    size,
    text_or_dash,
    when,
)
from ansim.commands.notices import OrgOption, SenderOption, SmtpOption, smtp_settings
from ansim.commands.workspace import open_listing, open_workspace
from ansim.i18n import _
from rich.table import Table
from rich.text import Text

queue_app = typer.Typer(help="The takedown queue.", no_args_is_help=True)


@queue_app.command("list")
@refusals
def queue_list(
    status: Annotated[str | None, typer.Option(help="Only items in this status.")] = None,
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List takedown items. Example: `ansim queue list --status new --case C-2026-0001`"""
    from ansim.casework import listings

    with open_listing() as store:
        items = listings.list_queue(store, status, case_id)
    if json_out:
        emit_json(items)
        return
    out.print(queue_table(items))


def queue_table(items: list[dict[str, Any]]) -> Table:
    columns = [
        Column(_("id"), key=True),
        Column(_("status"), keep=3),
        Column(_("case"), key=True),
        Column(_("reference"), keep=1),
        Column(_("location"), keep=2),
        Column(_("detected"), keep=0),
    ]
    rows = [
        (
            str(item["id"]),
            _(item["status"]),
            item["case_id"],
            str(item["reference_id"]),
            item.get("url") or item.get("path") or "-",
            when(item["detected_at"]),
        )  # fmt: skip
        for item in items
    ]
    return fitted_table(out, columns, rows)


@queue_app.command("show")
@refusals
def queue_show(item_id: int, json_out: JsonFlag = False) -> None:
    """Show one takedown item with its match evidence and status history."""
    from ansim.casework import queue

    shown = queue.show_item(open_workspace(), item_id)
    if json_out:
        emit_json(shown)
        return
    print_item(shown)


def print_item(shown: dict[str, Any]) -> None:
    """One queue item as labelled fields; its match, file, evidence and history indented."""
    fields: list[tuple[str, FieldValue]] = [
        (_("item"), str(shown["id"])),
        (_("status"), _(shown["status"])),
        (_("case"), shown["case_id"]),
        (_("reference"), str(shown["reference_id"])),
        (_("location"), shown.get("url") or shown.get("path") or "-"),
        (_("host"), text_or_dash(shown.get("host"))),
        (_("detected"), when(shown["detected_at"])),
    ]
    if shown.get("reason"):
        fields.append((_("reason"), shown["reason"]))
    match = shown.get("match")
    if match:
        fields.append(
            (
                _("match"),
                aligned(
                    [
                        (_("signal"), match["signal"]),
                        (_("distance"), number(match["distance"])),
                        (_("score"), number(match["score"], 3)),
                        (_("why"), text_or_dash(match["explanation"])),
                    ]
                ),
            )
        )
    item = shown.get("item")
    if item:
        fields.append(
            (
                _("file"),
                aligned(
                    [
                        (_("type"), text_or_dash(item["mime"])),
                        (_("size"), size(item["size"])),
                        ("SHA-256", text_or_dash(item["sha256"])),
                    ]
                ),
            )
        )
    fields.append(
        (_("evidence"), [line for e in shown.get("evidence", []) for line in evidence_lines(e)])
    )
    fields.append((_("history"), [history_line(e) for e in shown["history"]]))
    print_fields(out, fields)


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """`#3 sealed 2026-12-03 17:02, 4 WARC records`, then its page, media and digest."""
    lines = [
        _("#{id} sealed {at}, WARC records: {records}").format(
            id=evidence["id"], at=when(evidence["created_at"]), records=evidence["records"]
        )
    ]
    facts = [(_("page"), evidence.get("page_url")), (_("media"), evidence.get("media_url"))]
    facts.append(("WARC SHA-256", evidence["warc_sha256"]))
    return lines + ["  " + line for line in aligned((k, v) for k, v in facts if v)]


def history_line(event: dict[str, Any]) -> str:
    """`2026-12-03 17:02  new -> confirmed  by kim: same photo`"""
    change = f"{_(event['from']) if event['from'] else '-'} -> {_(event['to'])}"
    note = f": {event['note']}" if event.get("note") else ""
    return f"{when(event['at'])}  {change}  {_('by')} {event['by']}{note}"


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
    from ansim.casework import confirmations

    note = read_private_text(note_file, ask_note, "Why it is a copy")
    workspace = open_workspace()
    shown = confirmations.confirm(workspace, item_id, note)
    warn_single_operator(confirmations.list_rules(workspace), workspace.actor)
    if json_out:
        emit_json(shown)
    elif shown["status"] == "confirmed":
        out.print(_("item {item_id} confirmed").format(item_id=item_id))
    else:
        have, need = len(shown["confirmations"]), shown["confirmations_required"]
        out.print(
            _(
                "item {item_id}: confirmation {have} of {need} recorded; needs another analyst"
            ).format(item_id=item_id, have=have, need=need)
        )


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
    from ansim.casework import queue

    reason = read_private_text(reason_file, ask_reason, "Why it is not a copy")
    if not reason:
        raise typer.BadParameter("a rejection needs a reason: --reason-file or --ask-reason")
    shown = queue.set_status(open_workspace(), item_id, "rejected", reason)
    if json_out:
        emit_json(shown)
    else:
        out.print(_("item {item_id} rejected").format(item_id=item_id))


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
    from ansim.casework import confirmations

    workspace = open_workspace()
    if case_type is None:
        current = confirmations.list_rules(workspace)
    elif confirmations_required is None:
        raise typer.BadParameter(
            _("give --confirmations N to set it"), param_hint="--confirmations"
        )
    else:
        current = confirmations.set_rule(workspace, case_type, confirmations_required)
    warn_single_operator(current, workspace.actor)
    if json_out:
        emit_json(current)
        return
    for name, required in current.items():
        out.print(_("{case_type}: {count} analyst(s)").format(case_type=_(name), count=required))


def warn_single_operator(rules: dict[str, int], actor: str) -> None:
    """Embedded mode knows no accounts: whoever runs `ansim` is `actor` (ANSIM_ANALYST or
    the login name), so a rule needing several analysts is only as good as everyone's
    honesty. Say so, on stderr (JSON on stdout stays clean), whenever such a rule is set."""
    several = [case_type for case_type, required in rules.items() if required > 1]
    if not several:
        return
    err.print(
        Text(
            _(
                "warning: {case_types} need more than one analyst, but without ANSIM_SERVER "
                "this machine acts for one operator (now {actor}) and cannot tell people apart; "
                "run `ansim serve` and set ANSIM_SERVER to enforce the rule"
            ).format(case_types=", ".join(_(c) for c in several), actor=actor)
        ),
        soft_wrap=True,  # one line, however narrow the terminal
    )


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

    from ansim.casework import notice_service
    from ansim.casework.recheck import RecheckPolicy
    from ansim.pipeline import recheck_service

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
    raise typer.Exit(print_recheck(result.as_dict(), smtp is not None, json_out))


def print_recheck(report: dict[str, Any], resend_configured: bool, json_out: bool) -> int:
    """Print a re-check's report; returns its exit code (1: a URL unchecked, a resend failed)."""
    if json_out:
        emit_json(report)
    else:
        for c in report["checked"]:
            change = f"{c['before']} -> {c['after']}" if c["before"] != c["after"] else c["after"]
            line = f"{c['id']:>5} {c['verdict']:<11} {change:<28} "
            out.print(Text(line + c["url"]), highlight=False)
        unsent = "" if resend_configured else _(" (no --smtp: not resent)")
        out.print(
            _(
                "{gone} gone, {online} online, {unreachable} unreachable; "
                "{due} due for resend{unsent}, {resent} resent"
            ).format(
                gone=report["gone"],
                online=report["online"],
                unreachable=report["unreachable"],
                due=len(report["resend_due"]),
                unsent=unsent,
                resent=len(report["resent"]),
            )
        )
    return 1 if report["unreachable"] or report["resend_failed"] else 0
