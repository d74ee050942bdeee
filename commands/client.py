"""The command line as a client of `ansim serve`: with ANSIM_SERVER=URL set, `ansim login`
gets a personal token and the queue, case, ref, scan, evidence, notice, report and audit
commands (those in ROUTED) act through the server as that account (so a two-person rule
counts distinct accounts, and the server checks each command's role). Other commands that
change state or show victim data are refused while ANSIM_SERVER is set rather than run
embedded as nobody in particular.

The token is kept in $ANSIM_CLIENT_FILE (default ~/.config/ansim/client.json, mode 0600);
ANSIM_SERVER_CA names a CA file for a server with a private certificate.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.casework.errors import CaseworkError
from ansim.commands.common import (
    AskContact,
    AskNote,
    AskReason,
    ContactFile,
    JsonFlag,
    NoteFile,
    ReasonFile,
    emit_json,
    err,
    out,
    read_private_text,
    refusals,
)
from ansim.i18n import _
from ansim.settings import Settings
from rich.table import Table
from rich.text import Text

# Command groups that keep working locally while ANSIM_SERVER is set (no victim data).
LOCAL_COMMANDS = {"login", "logout", "serve", "bench", "hash", "model", "user", "token", "init",
                  "index", "--help", "-h"}  # fmt: skip
queue_client_app = typer.Typer(help="The takedown queue, through the server.", no_args_is_help=True)
case_client_app = typer.Typer(help="Support cases, through the server.", no_args_is_help=True)
audit_client_app = typer.Typer(help="The audit chain, through the server.", no_args_is_help=True)
report_client_app = typer.Typer(help="Takedown figures, through the server.")
ref_client_app = typer.Typer(help="References, through the server.", no_args_is_help=True)
scan_client_app = typer.Typer(help="Scanning collected files, through the server.")
evidence_client_app = typer.Typer(help="Sealed evidence, through the server.", no_args_is_help=True)
notice_client_app = typer.Typer(help="Removal notices, through the server.", no_args_is_help=True)
# Group -> (its client app, the subcommands that go through the server; None: all of it).
ROUTED: dict[str, tuple[typer.Typer, set[str] | None]] = {
    "queue": (queue_client_app, {"list", "show", "confirm", "reject", "policy", "recheck"}),
    "case": (case_client_app, {"list", "show", "open", "service", "close"}),
    "audit": (audit_client_app, {"verify", "list", "anchor"}),
    "report": (report_client_app, None),
    "notice": (notice_client_app, {"draft", "list", "show", "send", "settle"}),
    "ref": (ref_client_app, {"list", "add", "withdraw", "import", "export"}),
    "scan": (scan_client_app, None),
    "evidence": (evidence_client_app, {"export"}),
}


def client_file() -> Path:
    default = Path.home() / ".config" / "ansim" / "client.json"
    return Settings.from_environment().client_file or default


def _server(explicit: str | None = None) -> str:
    server = (explicit or Settings.from_environment().server or "").rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise CaseworkError("set ANSIM_SERVER=https://host:port (the ansim server)")
    return server


def _token(server: str) -> str:
    try:
        saved = json.loads(client_file().read_text())
    except (OSError, ValueError) as exc:
        raise CaseworkError(f"not signed in to {server}: run `ansim login`") from exc
    if saved.get("server") != server:
        raise CaseworkError(f"signed in to {saved.get('server')}, not {server}: run `ansim login`")
    return str(saved["token"])


def call(method: str, path: str, body: Any = None, token: str | None = None,
         server: str | None = None, upload: Path | None = None) -> Any:  # fmt: skip
    """One JSON request to the server (or one file, multipart, with `upload`); its
    refusals become CaseworkErrors (exit code 2)."""
    with _opened(method, path, body, token, server, upload) as answer:
        return json.loads(answer.read() or b"null")


def download(path: str, write: Callable[[bytes], Any]) -> int:
    """A GET whose answer is streamed to `write` in chunks as it arrives; returns its bytes."""
    size = 0
    with _opened("GET", path) as answer:
        while chunk := _read_chunk(answer):
            write(chunk)
            size += len(chunk)
    return size


def _read_chunk(answer: Any) -> bytes:
    import http.client  # here: every command imports this module (`route`)

    try:
        return answer.read(1 << 16)
    except (OSError, http.client.HTTPException) as exc:
        raise CaseworkError(f"the server's answer broke off: {exc}") from exc


@contextmanager
def _opened(method: str, path: str, body: Any = None, token: str | None = None,
            server: str | None = None, upload: Path | None = None) -> Iterator[Any]:  # fmt: skip
    """The server's answer, open for reading; refusals and failures as CaseworkErrors."""
    # Imported here: every command loads this module (`route`), few of them call a server.
    import ssl
    import urllib.error
    import urllib.request

    base = _server(server)
    headers = {"Accept": "application/json"}
    if token is None:
        token = _token(base)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if upload is not None:
        data, headers["Content-Type"] = _multipart(upload)
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    ca_file = Settings.from_environment().server_ca
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        answer = urllib.request.urlopen(request, timeout=60, context=context)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        raise CaseworkError(f"server refused ({exc.code}): {message}") from exc
    except urllib.error.URLError as exc:
        raise CaseworkError(f"cannot reach {base}: {exc.reason}") from exc
    with answer:
        yield answer


def _multipart(path: Path) -> tuple[bytes, str]:
    """One file as multipart/form-data (field `file`), in memory: never a temporary file."""
    boundary = "ansim-" + os.urandom(12).hex()
    name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


@refusals
def login(
    name: Annotated[str, typer.Option(help="Your account on the server.")],
    server: Annotated[str | None, typer.Option(help="Server URL (default $ANSIM_SERVER).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    token_name: Annotated[str, typer.Option(help="Name for the new token.")] = "cli",
) -> None:
    """Sign in to the ansim server and keep a personal token (mode 0600) for later commands."""
    base = _server(server)
    password = (
        sys.stdin.readline().rstrip("\r\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True)
    )
    credentials = {"name": name, "password": password, "token_name": token_name}
    answer = call("POST", "/api/login", credentials, token="", server=base)
    path = client_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"server": base, "user": answer["user"], "token": answer["token"]}, handle)
    os.chmod(path, 0o600)
    out.print(f"signed in to {base} as {answer['user']} ({answer['role']})")


@refusals
def logout() -> None:
    """Revoke this machine's token on the server and forget it."""
    call("POST", "/api/logout", {})
    client_file().unlink(missing_ok=True)
    out.print("signed out")


@queue_client_app.command("list")
@refusals
def remote_list(
    status: Annotated[str | None, typer.Option()] = None,
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List takedown items (through the server)."""
    query = urllib.parse.urlencode(
        {k: v for k, v in {"status": status, "case": case_id}.items() if v}
    )
    items = call("GET", f"/api/queue?{query}")
    if json_out:
        emit_json(items)
        return
    table = Table("id", "status", "case", "reference", "location", "detected")
    for item in items:
        table.add_row(
            str(item["id"]), item["status"], item["case_id"], str(item["reference_id"]),
            item.get("url") or item.get("path"), item["detected_at"][:19],
        )  # fmt: skip
    out.print(table)


@queue_client_app.command("show")
@refusals
def remote_show(item_id: int, json_out: JsonFlag = False) -> None:
    """Show one takedown item (through the server)."""
    from ansim.commands.queue import print_item

    shown = call("GET", f"/api/queue/{item_id}")
    if json_out:
        emit_json(shown)
        return
    print_item(shown)


@queue_client_app.command("confirm")
@refusals
def remote_confirm(
    item_id: int, note: Annotated[str | None, typer.Option()] = None, json_out: JsonFlag = False
) -> None:
    """Confirm as your server account (counts once under a two-person rule)."""
    shown = call("POST", f"/api/queue/{item_id}/confirm", {"note": note})
    if json_out:
        emit_json(shown)
    elif shown["status"] == "confirmed":
        out.print(f"item {item_id} confirmed")
    else:
        have, need = len(shown["confirmations"]), shown["confirmations_required"]
        out.print(f"item {item_id}: confirmation {have} of {need} recorded; needs another analyst")


@queue_client_app.command("reject")
@refusals
def remote_reject(
    item_id: int, reason: Annotated[str, typer.Option()], json_out: JsonFlag = False
) -> None:
    """Reject a false match, with the reason (through the server)."""
    shown = call("POST", f"/api/queue/{item_id}/reject", {"reason": reason})
    emit_json(shown) if json_out else out.print(f"item {item_id} rejected")


@queue_client_app.command("policy")
@refusals
def remote_policy(
    case_type: Annotated[str | None, typer.Argument()] = None,
    confirmations_required: Annotated[int | None, typer.Option("--confirmations")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show or set confirmation rules (setting needs a supervisor account)."""
    if case_type is None:
        current = call("GET", "/api/rules")
    elif confirmations_required is None:
        raise typer.BadParameter("give --confirmations N to set it", param_hint="--confirmations")
    else:
        body = {"case_type": case_type, "confirmations": confirmations_required}
        current = call("POST", "/api/rules", body)
    if json_out:
        emit_json(current)
        return
    for name, required in current.items():
        out.print(f"{name}: {required} analyst(s)")


@queue_client_app.command("recheck")
@refusals
def remote_recheck(
    resend_after: Annotated[float, typer.Option(help="Hours before a notice is resent.")] = 24,
    escalate_after: Annotated[float, typer.Option(help="Days online before escalation.")] = 7,
    resend: Annotated[bool, typer.Option(help="Resend due notices now.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds per URL.")] = 15,
    gone_days: Annotated[int, typer.Option(min=1, max=30)] = 2,
    json_out: JsonFlag = False,
) -> None:
    """Re-check every notified URL from the server (its fetcher, guards and SMTP settings),
    acting as your account. Exits 1 when a URL could not be checked or a resend failed."""
    from ansim.commands.queue import print_recheck

    body = {
        "resend_after_hours": resend_after,
        "escalate_after_days": escalate_after,
        "resend": resend,
        "timeout_s": timeout,
        "gone_days": gone_days,
    }
    answer = call("POST", "/api/queue/recheck", body)
    raise typer.Exit(print_recheck(answer["report"], answer["resend_configured"], json_out))


@audit_client_app.command("anchor")
@refusals
def remote_audit_anchor(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the head (0600).")],
    json_out: JsonFlag = False,
) -> None:
    """Write the server's audit head to a 0600 file here, to keep off the server's machine
    (a supervisor account); `audit verify --anchor FILE` on the server checks it later."""
    from ansim.store.private_files import write_private

    anchor = call("GET", "/api/audit/anchor")
    write_private(out_file, anchor["text"].encode())
    result = {"file": str(out_file), "seq": anchor["seq"], "hash": anchor["hash"]}
    if json_out:
        emit_json(result)
    else:
        out.print(f"anchored entry {anchor['seq']} in {out_file}", highlight=False, markup=False)


def _query(**values: str | None) -> str:
    chosen = {k: v for k, v in values.items() if v}
    return "?" + urllib.parse.urlencode(chosen) if chosen else ""


@case_client_app.command("list")
@refusals
def remote_case_list(
    status: Annotated[str | None, typer.Option(help="open or closed")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List cases (through the server; a supervisor account)."""
    from ansim.commands.cases import print_case_list

    summaries = call("GET", f"/api/cases{_query(status=status)}")
    emit_json(summaries) if json_out else print_case_list(summaries)


@case_client_app.command("show")
@refusals
def remote_case_show(
    case_id: str,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Decrypt the contact (audited).")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Show one case (through the server; a supervisor account)."""
    from ansim.commands.cases import print_case

    quoted = urllib.parse.quote(case_id, safe="")
    shown = call("GET", f"/api/cases/{quoted}{_query(reveal='1' if reveal else None)}")
    emit_json(shown) if json_out else print_case(shown)


@case_client_app.command("open")
@refusals
def remote_case_open(
    case_type: Annotated[str, typer.Option("--type")],
    pseudonym: Annotated[str | None, typer.Option()] = None,
    contact_file: ContactFile = None,
    ask_contact: AskContact = False,
    assigned_to: Annotated[str | None, typer.Option()] = None,
    json_out: JsonFlag = False,
) -> None:
    """Open a case (through the server; the contact is sent in the request body, never argv)."""
    contact = read_private_text(contact_file, ask_contact, "Contact details")
    body = {"type": case_type, "pseudonym": pseudonym, "contact": contact,
            "assigned_to": assigned_to}  # fmt: skip
    case_id = call("POST", "/api/cases", body)["case_id"]
    emit_json({"case_id": case_id}) if json_out else out.print(
        _("opened case {case_id}").format(case_id=case_id)
    )


@case_client_app.command("service")
@refusals
def remote_case_service(
    case_id: str,
    kind: Annotated[str, typer.Option()],
    note_file: NoteFile = None,
    ask_note: AskNote = False,
    json_out: JsonFlag = False,
) -> None:
    """Record a support service given to a case (through the server; a supervisor account).
    The note travels in the request body and is stored encrypted."""
    from ansim.commands.cases import print_service

    note = read_private_text(note_file, ask_note, "Note") or ""
    quoted = urllib.parse.quote(case_id, safe="")
    answer = call("POST", f"/api/cases/{quoted}/services", {"kind": kind, "note": note})
    print_service(case_id, answer["service_id"], json_out)


@case_client_app.command("close")
@refusals
def remote_case_close(
    case_id: str,
    purge: Annotated[bool, typer.Option("--purge")] = False,
    yes: Annotated[bool, typer.Option("--yes")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Close a case; with --purge, delete what identifies it (through the server; a
    supervisor account; cannot be undone, audited)."""
    from ansim.commands.cases import print_closed

    if purge and not yes:
        typer.confirm(
            _("Purge {case_id}? This cannot be undone.").format(case_id=case_id), abort=True
        )
    quoted = urllib.parse.quote(case_id, safe="")
    print_closed(call("POST", f"/api/cases/{quoted}/close", {"purge": purge}), json_out)


@report_client_app.command()
@refusals
def remote_report(
    since: Annotated[str | None, typer.Option()] = None,
    until: Annotated[str | None, typer.Option()] = None,
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    plot: Annotated[Path | None, typer.Option()] = None,
    json_out: JsonFlag = False,
) -> None:
    """Takedown figures (through the server; a supervisor account)."""
    from ansim.commands.reporting import print_report

    query = _query(since=since, until=until, case=case_id)
    shown = call("GET", f"/api/report{query}")
    if plot is not None:
        from ansim.store.private_files import open_private

        with open_private(plot) as handle:  # figures of cases: 0600, where the user asked
            download(f"/api/report/plot.png{query}", handle.write)
        shown["plot"] = str(plot)
    emit_json(shown) if json_out else print_report(shown)


@audit_client_app.command("verify")
@refusals
def remote_audit_verify(
    anchor: Annotated[Path | None, typer.Option()] = None, json_out: JsonFlag = False
) -> None:
    """Check the server's audit chain against its own anchor, and against a head shipped
    off earlier (`--anchor FILE`, read here and sent to the server); a supervisor account."""
    from ansim.commands.admin import print_audit_verdict

    if anchor is None:
        verdict = call("GET", "/api/audit/verify")
    else:
        try:
            text = anchor.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CaseworkError(f"cannot read the anchor {anchor}: {exc}") from exc
        verdict = call("POST", "/api/audit/verify", {"anchor": text})
    print_audit_verdict(verdict, json_out)


@audit_client_app.command("list")
@refusals
def remote_audit_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, json_out: JsonFlag = False
) -> None:
    """The newest audit entries, newest first (a supervisor account)."""
    entries = call("GET", f"/api/audit{_query(limit=str(limit))}")
    if json_out:
        emit_json(entries)
        return
    for e in entries:
        line = f"{e['seq']:>6} {e['at'][:19]} {e['actor']:<12} {e['action']:<22} {e['subject']}"
        out.print(Text(line), highlight=False)


@notice_client_app.command("list")
@refusals
def remote_notice_list(
    status: Annotated[str | None, typer.Option()] = None,
    host: Annotated[str | None, typer.Option()] = None,
    json_out: JsonFlag = False,
) -> None:
    """List removal notices, newest first (through the server)."""
    from ansim.commands.notices import print_notice_list

    listed = call("GET", f"/api/notices{_query(status=status, host=host)}")
    emit_json(listed) if json_out else print_notice_list(listed)


@notice_client_app.command("draft")
@refusals
def remote_notice_draft(
    host: Annotated[str | None, typer.Option()] = None,
    out_dir: Annotated[Path | None, typer.Option("--out")] = None,
    sender_email: Annotated[str | None, typer.Option("--sender")] = None,
    org: Annotated[str | None, typer.Option()] = None,
    json_out: JsonFlag = False,
) -> None:
    """Draft notices for confirmed items on the server (files stay in its home; nothing sent)."""
    from ansim.commands.notices import print_draft

    if out_dir is not None:
        raise CaseworkError("--out writes files on the server's machine: unset ANSIM_SERVER there")
    body = {"host": host, "sender": sender_email, "org": org}
    print_draft(call("POST", "/api/notices/draft", body), json_out)


@notice_client_app.command("show")
@refusals
def remote_notice_show(ref: str, json_out: JsonFlag = False) -> None:
    """Show one removal notice (through the server)."""
    from ansim.commands.notices import print_notice

    print_notice(call("GET", f"/api/notices/{urllib.parse.quote(ref, safe='')}"), json_out)


@notice_client_app.command("send")
@refusals
def remote_notice_send(
    host: Annotated[str | None, typer.Option()] = None,
    smtp_url: Annotated[str | None, typer.Option("--smtp")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Send drafted notices from the server, by its SMTP settings (as your account)."""
    from ansim.commands.notices import print_send

    if smtp_url is not None:
        raise CaseworkError("--smtp: the server sends with its own SMTP settings (ANSIM_SMTP_URL)")
    print_send(call("POST", "/api/notices/send", {"host": host}), json_out)


@notice_client_app.command("settle")
@refusals
def remote_notice_settle(
    ref: str,
    delivered: Annotated[bool, typer.Option("--delivered/--not-delivered")],
    json_out: JsonFlag = False,
) -> None:
    """Settle a notice an interrupted send left in `sending` (through the server)."""
    from ansim.commands.notices import print_settled

    quoted = urllib.parse.quote(ref, safe="")
    print_settled(call("POST", f"/api/notices/{quoted}/settle", {"delivered": delivered}), json_out)


@ref_client_app.command("withdraw")
@refusals
def remote_ref_withdraw(
    reference_id: int,
    reason_file: ReasonFile = None,
    ask_reason: AskReason = False,
    json_out: JsonFlag = False,
) -> None:
    """The victim withdrew consent (through the server; a supervisor account): the reason
    travels in the request body and is kept encrypted with the audit log."""
    from ansim.commands.references import print_withdrawn

    reason = read_private_text(reason_file, ask_reason, "Why")
    answer = call("POST", f"/api/references/{reference_id}/withdraw", {"reason": reason})
    print_withdrawn(reference_id, answer["signals_removed"], json_out)


@ref_client_app.command("list")
@refusals
def remote_ref_list(
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    modality: Annotated[str | None, typer.Option()] = None,
    json_out: JsonFlag = False,
) -> None:
    """List references (through the server; a supervisor account)."""
    from ansim.commands.references import references_table

    listed = call("GET", f"/api/references{_query(case=case_id, modality=modality)}")
    emit_json(listed) if json_out else out.print(references_table(listed))


@ref_client_app.command("add")
@refusals
def remote_ref_add(
    case_id: str,
    paths: Annotated[list[Path], typer.Argument()],
    json_out: JsonFlag = False,
) -> None:
    """Upload reported files to be fingerprinted into the case's references, one request per
    file (through the server; a supervisor account). The server keeps only the signals."""
    from ansim.casework.files import expand_paths

    case_path = f"/api/cases/{urllib.parse.quote(case_id, safe='')}/references"
    results = [
        call("POST", case_path, upload=path)
        if path.is_file()
        else {"path": str(path), "reference_id": None, "modality": None, "error": "no such file"}
        for path in expand_paths(paths)
    ]
    failed = [r for r in results if r["error"]]
    if json_out:
        emit_json(results)
    else:
        for r in results:
            line = (
                f"{r['path']}: {r['error']}"
                if r["error"]
                else _("reference {id} ({modality}) <- {path}").format(
                    id=r["reference_id"], modality=_(r["modality"]), path=r["path"]
                )
            )
            out.print(Text(line), highlight=False)
        out.print(
            _("{added} added, {failed} failed").format(
                added=len(results) - len(failed), failed=len(failed)
            )
        )
    raise typer.Exit(1 if failed else 0)


@ref_client_app.command("import")
@refusals
def remote_ref_import(
    case_id: str,
    list_file: Path,
    hash_format: Annotated[str, typer.Option("--format")] = "pdq",
    json_out: JsonFlag = False,
) -> None:
    """Upload a shared hash list to be imported into the case's references (through the
    server; a supervisor account). `--format vpdq`: one request per video's hash file."""
    from ansim.casework.files import expand_paths
    from ansim.commands.references import print_import, print_vpdq_imports

    case_path = f"/api/cases/{urllib.parse.quote(case_id, safe='')}/references/import"
    if hash_format != "vpdq":
        if not list_file.is_file():
            raise CaseworkError(f"cannot read hash list {list_file}")
        print_import(call("POST", case_path + _query(format=hash_format), upload=list_file),
                     json_out)  # fmt: skip
    imported = []
    for path in expand_paths([list_file]):
        if not path.is_file():
            imported.append({"path": str(path), "reference_id": None, "modality": None,
                             "error": "no such file"})  # fmt: skip
            continue
        for result in call("POST", case_path + "?format=vpdq", upload=path):
            imported.append({**result, "path": str(path)})
    print_vpdq_imports(imported, json_out)


@ref_client_app.command("export")
@refusals
def remote_ref_export(
    hash_format: Annotated[str, typer.Option("--format")] = "pdq",
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    output: Annotated[Path | None, typer.Option("--out")] = None,
) -> None:
    """Export reference hashes from the server (a supervisor account), streamed into a 0600
    file (--out) or to stdout as they arrive."""
    from ansim.commands.references import write_vpdq_videos
    from ansim.store.private_files import open_private

    path = f"/api/references/export{_query(format=hash_format, case=case_id)}"
    if hash_format == "vpdq":
        write_vpdq_videos([(label, text) for label, text in call("GET", path)], output)
        return
    if output is None:
        download(path, sys.stdout.buffer.write)
        return
    lines = 0

    def write(chunk: bytes) -> None:
        nonlocal lines
        sink.write(chunk)
        lines += chunk.count(b"\n")

    try:
        with open_private(output) as sink:
            download(path, write)
    except BaseException:
        output.unlink(missing_ok=True)  # a refusal or a broken answer leaves no part behind
        raise
    err.print(f"wrote {lines} hashes to {output}")


@scan_client_app.command()
@refusals
def remote_scan(
    targets: Annotated[list[str], typer.Argument()],
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Upload collected files to be matched against every reference, or have the server
    fetch URLs with its crawler's guards; matches are queued as your account."""
    from ansim.casework.files import expand_paths

    urls = [t for t in targets if "://" in t]
    if urls:
        from ansim.commands.crawl import print_crawl_summary

        if dry_run:
            raise CaseworkError(_("--dry-run applies to files only, not URLs"))
        summary = call("POST", "/api/scan/urls", {"urls": urls})
        print_crawl_summary(summary, json_out, verb=_("scanned"))
        failed = sum(v for k, v in summary["outcomes"].items() if k not in ("ok", "not_html"))
        if len(urls) == len(targets):
            raise typer.Exit(1 if failed else 0)
    report: dict[str, Any] = {"scanned": 0, "errors": 0, "matches": [], "failures": []}
    for path in expand_paths([Path(t) for t in targets if "://" not in t]):
        report["scanned"] += 1
        if not path.is_file():
            report["errors"] += 1
            report["failures"].append({"path": str(path), "error": "no such file"})
            continue
        query = _query(location=str(path), dry_run="1" if dry_run else None)
        answer = call("POST", f"/api/scan{query}", upload=path)
        if answer["error"]:
            report["errors"] += 1
            report["failures"].append({"path": str(path), "error": answer["error"]})
        report["matches"] += answer["matches"]
    if json_out:
        emit_json(report)
    else:
        for failure in report["failures"]:
            out.print(Text(f"{failure['path']}: {failure['error']}"), highlight=False)
        for m in report["matches"]:
            queued = (
                _("queue item {item}").format(item=m["takedown_id"])
                if m["takedown_id"]
                else _("not recorded (dry run)")
            )
            out.print(Text(_("match") + " ", style="bold") + Text(m["path"]), highlight=False)
            line = _("case {case}, reference {reference}: {why}; {queued}").format(
                case=m["case_id"], reference=m["reference_id"], why=m["explanation"], queued=queued
            )
            out.print(Text("  " + line), highlight=False)
        out.print(
            _("{scanned} scanned, {matches} matches, {errors} errors").format(
                scanned=report["scanned"], matches=len(report["matches"]), errors=report["errors"]
            )
        )
    raise typer.Exit(1 if report["errors"] else 0)


@evidence_client_app.callback()
def evidence_group() -> None:
    """Sealed evidence, through the server (a group, even with one command in it)."""


@evidence_client_app.command("export")
@refusals
def remote_evidence_export(
    evidence_id: int,
    out_dir: Annotated[Path, typer.Argument(help="Folder for the WARC file and its manifest.")],
    json_out: JsonFlag = False,
) -> None:
    """Decrypt one evidence bundle on the server (a supervisor account) and write it here:
    0600 files in a 0700 folder; the WARC's SHA-256 is checked again on arrival."""
    import base64
    import hashlib

    from ansim.store.private_files import private_dir, write_private

    answer = call("POST", f"/api/evidence/{evidence_id}/export", {"to": str(out_dir.resolve())})
    private_dir(out_dir)
    written = []
    for file in answer["files"]:
        name = Path(file["name"]).name  # never a path from the server
        data = base64.b64decode(file["data"])
        damaged = hashlib.sha256(data).hexdigest() != answer["warc_sha256"]
        if name.endswith(".warc.gz") and damaged:
            raise CaseworkError(f"evidence {evidence_id}: the WARC arrived damaged")
        written.append(str(write_private(out_dir / name, data)))
    result = {**answer, "files": written}
    if json_out:
        emit_json(result)
    else:
        out.print(Text(_("wrote") + ": " + ", ".join(written)), highlight=False)
        out.print(Text("WARC SHA-256: " + _("{digest} (verified)").format(
            digest=answer["warc_sha256"])), highlight=False)  # fmt: skip


def route(args: list[str]) -> None:
    """With ANSIM_SERVER set: run routed commands through the server and exit; refuse the
    other state-changing and victim-data commands; let local ones through."""
    if not Settings.from_environment().server or not args or args[0] in LOCAL_COMMANDS:
        return
    client_app, subcommands = ROUTED.get(args[0], (None, set()))
    if client_app is not None and subcommands is None:
        client_app(args[1:], prog_name=f"ansim {args[0]}")
    if client_app is not None and len(args) > 1 and args[1] in (subcommands or set()):
        client_app(args[1:], prog_name=f"ansim {args[0]}")
    err.print(
        f"[red]error:[/red] `ansim {args[0]}` does not go through the server yet; unset "
        "ANSIM_SERVER to run it embedded on this machine's store (one operator)",
        highlight=False,
    )
    raise SystemExit(2)
