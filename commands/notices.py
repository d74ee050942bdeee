"""`ansim host ...` and `ansim notice ...`: where removal notices go, drafting and sending them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from ansim.commands.common import JsonFlag, emit_json, out, refusals, shown
from ansim.commands.display import Column, fitted_table, print_fields, text_or_dash, when
from ansim.commands.workspace import open_listing, open_workspace
from ansim.i18n import _

if TYPE_CHECKING:
    from ansim.casework.smtp import SmtpSettings
    from ansim.settings import Settings

host_app = typer.Typer(help="Hosts: where removal notices go.", no_args_is_help=True)

notice_app = typer.Typer(help="Removal notices: draft, send.", no_args_is_help=True)


def smtp_settings(smtp_url: str | None, settings: Settings) -> SmtpSettings:
    """The server given by --smtp, else the configured one."""
    from ansim.casework.smtp import SmtpSettings

    try:
        if smtp_url:  # from argv, which every user of the machine can read
            return SmtpSettings.from_url(smtp_url, password_in_url=False)
        return SmtpSettings.configured(settings.smtp_url)
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
    from ansim.casework import hosts

    shown = hosts.set_host(open_workspace(), domain, abuse_email, form_url, lang)
    if json_out:
        emit_json(shown)
        return
    print_fields(
        out,
        [
            (_("host"), shown["domain"]),
            (_("abuse e-mail"), text_or_dash(shown["abuse_email"])),
            (_("form"), text_or_dash(shown["form_url"])),
            (_("notice language"), shown["lang"]),
        ],
    )


@host_app.command("list")
@refusals
def host_list(json_out: JsonFlag = False) -> None:
    """List registered hosts."""
    from ansim.casework import listings

    with open_listing() as store:
        listed = listings.list_hosts(store)
    if json_out:
        emit_json(listed)
        return
    columns = [
        Column(_("host"), key=True),
        Column(_("abuse e-mail"), keep=2),
        Column(_("form"), keep=0),
        Column(_("language"), keep=1),
    ]
    rows = [(h["domain"], h["abuse_email"] or "-", h["form_url"] or "-", h["lang"]) for h in listed]
    out.print(fitted_table(out, columns, rows))


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
    from ansim.casework import notice_service

    workspace = open_workspace()
    sender = notice_service.notice_sender(workspace.settings, sender_email, org)
    result = notice_service.draft(workspace, sender, out_dir, host)
    print_draft(result.as_dict(), json_out)


def print_draft(result: dict[str, Any], json_out: bool) -> None:
    """The drafted notices and the skipped items; exits 1 when an item was skipped."""
    if json_out:
        emit_json(result)
    else:
        for n in result["notices"]:
            out.print(
                _("{ref}: notice to {to} ({lang}) for items {items}").format(
                    ref=n["ref"], to=n["to"], lang=n["lang"], items=item_list(n["takedowns"])
                ),
                highlight=False,
            )
        for skipped in result["skipped"]:
            out.print(
                _("skipped item {id}: {reason}").format(
                    id=skipped["id"], reason=shown(skipped["reason"])
                ),
                style="yellow",
                highlight=False,
            )
        if result["csv"]:
            out.print(
                _("files in {folder}").format(folder=Path(result["csv"]).parent), highlight=False
            )
    raise typer.Exit(1 if result["skipped"] else 0)


@notice_app.command("send")
@refusals
def notice_send(
    host: Annotated[str | None, typer.Option(help="Only notices to this host.")] = None,
    smtp_url: SmtpOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Send drafted notices by SMTP; items become notice_sent only once the server took them.

    Example: `ANSIM_SMTP_PASSWORD_FILE=~/.smtp-pass ansim notice send --smtp smtp+starttls://user@mail.center.example`
    """
    from ansim.casework import notice_service

    workspace = open_workspace()
    result = notice_service.send(workspace, smtp_settings(smtp_url, workspace.settings), host)
    print_send(result.as_dict(), json_out)


def print_send(result: dict[str, Any], json_out: bool) -> None:
    """What a send did; exits 1 when a notice failed or was left stuck in `sending`."""
    if json_out:
        emit_json(result)
    else:
        for n in result["sent"]:
            out.print(
                _("sent {ref} to {to}: items {items} -> notice_sent").format(
                    ref=n["ref"], to=n["to"], items=item_list(n["takedowns"])
                ),
                highlight=False,
            )
        for n in result["failed"]:
            out.print(
                _("failed {ref} to {to}: {error}").format(
                    ref=n["ref"], to=n["to"], error=shown(n["error"])
                ),
                style="red",
                highlight=False,
            )
        for n in result["skipped"]:
            out.print(
                _("skipped {ref}: {reason}").format(ref=n["ref"], reason=n["reason"]),
                style="yellow",
                highlight=False,
            )
        for ref in result["stuck_sending"]:
            out.print(
                _(
                    "stuck: {ref} was left sending by an interrupted send: check the mail log, "
                    "then `ansim notice settle {ref} --delivered` (or --not-delivered)"
                ).format(ref=ref),
                style="yellow",
                highlight=False,
            )
    raise typer.Exit(1 if result["failed"] or result["stuck_sending"] else 0)


@notice_app.command("list")
@refusals
def notice_list(
    status: Annotated[
        str | None, typer.Option(help="Only this status (drafted, sending, sent, failed, ...).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Only notices to this host.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List removal notices, newest first.

    Example: `ansim notice list --status sending` (notices an interrupted send left behind)
    """
    from ansim.casework import notice_service

    listed = notice_service.list_notices(open_workspace(), status, host)
    if json_out:
        emit_json(listed)
        return
    print_notice_list(listed)


def print_notice_list(listed: list[dict[str, Any]]) -> None:
    columns = [
        Column(_("notice"), key=True),
        Column(_("host"), keep=4),
        Column(_("to"), keep=1),
        Column(_("status"), keep=5),
        Column(_("items"), keep=3),
        Column(_("sent"), keep=2),
        Column(_("error"), keep=0),
    ]
    rows = [
        (
            n["ref"],
            n["host"],
            n["to"],
            _(n["status"]),
            item_list(n["takedowns"]),
            when(n["sent_at"]),
            n["error"] or "-",
        )  # fmt: skip
        for n in listed
    ]
    out.print(fitted_table(out, columns, rows))


@notice_app.command("show")
@refusals
def notice_show(
    ref: Annotated[str, typer.Argument(help="The notice, e.g. N-2026-00001.")],
    json_out: JsonFlag = False,
) -> None:
    """Show one removal notice: host, address, language, status, times, its queue items."""
    from ansim.casework import notice_service
    from ansim.casework.errors import NotFound

    found = [n for n in notice_service.list_notices(open_workspace()) if n["ref"] == ref]
    if not found:
        raise NotFound(_("unknown notice {ref}").format(ref=ref))
    [notice] = found
    print_notice(notice, json_out)


def print_notice(notice: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(notice)
        return
    print_fields(
        out,
        [
            (_("notice"), notice["ref"]),
            (_("status"), _(notice["status"])),
            (_("host"), notice["host"]),
            (_("to"), notice["to"]),
            (_("notice language"), notice["lang"]),
            (_("drafted"), when(notice["created_at"])),
            (_("sent"), when(notice["sent_at"])),
            (_("error"), text_or_dash(notice["error"])),
            (_("items"), item_list(notice["takedowns"])),
        ],
    )


@notice_app.command("settle")
@refusals
def notice_settle(
    ref: Annotated[str, typer.Argument(help="The notice, e.g. N-2026-00001.")],
    delivered: Annotated[
        bool,
        typer.Option(
            "--delivered/--not-delivered",
            help="What the mail server's log (or the host's reply) says happened.",
        ),
    ],
    json_out: JsonFlag = False,
) -> None:
    """Settle a notice an interrupted `notice send` left in `sending`.

    Delivered: its items move to notice_sent. Not delivered: it becomes failed and the next
    `notice send` retries it. Audited either way.

    Example: `ansim notice settle N-2026-00007 --not-delivered`
    """
    from ansim.casework import notice_service

    print_settled(notice_service.settle(open_workspace(), ref, delivered), json_out)


def print_settled(settled: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(settled)
    else:
        out.print(
            _("{ref}: {status}; items moved: {items}").format(
                ref=settled["ref"],
                status=_(settled["status"]),
                items=item_list(settled["takedowns"]),
            ),
            highlight=False,
        )


def item_list(takedowns: list[int]) -> str:
    """Queue item ids as `1, 2, 3` (`-` when none)."""
    return ", ".join(str(t) for t in takedowns) or "-"
