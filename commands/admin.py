"""`ansim init`, `ansim audit ...`, `ansim index ...`: the home, the audit chain, the indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from ansim.commands.common import JsonFlag, emit_json, err, out, refusals
from ansim.commands.display import print_fields
from ansim.commands.workspace import open_plain_home, open_workspace
from ansim.i18n import _

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

key_app = typer.Typer(help="The data encryption key.", no_args_is_help=True)

index_app = typer.Typer(
    help="The signal indexes (rebuildable from the store).", no_args_is_help=True
)

log_app = typer.Typer(help="Logs of the home: unexpected errors.", no_args_is_help=True)


@refusals
def init(json_out: JsonFlag = False) -> None:
    """Create $ANSIM_HOME (default ~/.ansim): database, schema and encryption key (mode 0600).

    Safe to run again: it only creates what is missing and upgrades the schema.
    """
    from ansim.pipeline.workspaces import init_workspace, key_warnings

    workspace, created_key = init_workspace()
    result = {
        "home": str(workspace.home.root),
        "database": workspace.home.db_url.split("@")[-1],
        "key_file": str(workspace.home.key_file),
        "key_created": created_key,
        "warnings": key_warnings(workspace.home),
    }
    for warning in result["warnings"]:
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if json_out:
        emit_json(result)
    else:
        ready = (
            _("ansim home ready at {home} (key created)")
            if created_key
            else _("ansim home ready at {home} (key kept)")
        )
        out.print(ready.format(home=result["home"]), highlight=False)


@audit_app.command("verify")
@refusals
def audit_verify(
    anchor: Annotated[
        Path | None,
        typer.Option(help="A head shipped off the machine earlier (`ansim audit anchor --out`)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check the whole audit chain; exits 1 if any row was edited, deleted or reordered.

    Example: `ansim audit verify --anchor /mnt/offsite/ansim-anchor.txt`
    """
    from ansim.store import audit

    try:
        checked, problems = verify_audit_chain(anchor)
    except audit.AnchorProblem as exc:
        checked, problems = 0, [audit.AuditProblem(None, str(exc))]
    result = {"entries": checked, "ok": not problems, "problems": [p.__dict__ for p in problems]}
    print_audit_verdict(result, json_out)


def verify_audit_chain(shipped: Path | None) -> tuple[int, list[Any]]:
    """`audit.verify` of the home's chain: through sqlite3 where the home allows it
    (`store.plain_sqlite`, no SQLAlchemy to import), else through the opened Workspace."""
    plain = open_plain_home()
    if plain is not None:
        try:
            with plain.transaction(write=False):
                return plain.verify_audit(shipped)
        finally:
            plain.close()
    from ansim.store import audit

    workspace = open_workspace()
    with workspace.store.read_session() as session:
        return audit.verify(session, workspace.home.audit_head_file, shipped=shipped)


def print_audit_verdict(result: dict[str, Any], json_out: bool) -> None:
    """The chain's verdict; exits 1 when it is broken."""
    problems, checked = result["problems"], result["entries"]
    if json_out:
        emit_json(result)
    elif problems:
        for p in problems:
            out.print(
                _("entry {seq}: {problem}").format(
                    seq=p["seq"] if p["seq"] is not None else "-", problem=p["message"]
                ),
                style="red",
                highlight=False,
            )
        out.print(
            _("audit chain BROKEN: {problems} problems in {entries} entries").format(
                problems=len(problems), entries=checked
            )
        )
    else:
        out.print(_("audit chain intact: {entries} entries").format(entries=checked))
    raise typer.Exit(1 if problems else 0)


@audit_app.command("anchor")
@refusals
def audit_anchor(
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the head (a 0600 file), e.g. off-site.")
    ],
    json_out: JsonFlag = False,
) -> None:
    """Write the chain's current head to a file to keep off this machine; `audit verify
    --anchor FILE` later proves the chain was not rewritten up to there. Run it from cron
    (see docs) and ship the file elsewhere.

    Example: `ansim audit anchor --out /mnt/offsite/ansim-anchor.txt`
    """
    from ansim.store import audit
    from ansim.store.private_files import write_private
    from ansim.store.tables import AuditHead

    workspace = open_workspace()
    with workspace.store.read_session() as session:
        head = session.get(AuditHead, 1)
        seq, head_hash = (head.seq, head.entry_hash) if head is not None else (0, "")
    if not seq:
        raise typer.BadParameter("the audit log is empty; nothing to anchor")
    write_private(out_file, audit.shipped_anchor_text(seq, head_hash).encode())
    result = {"file": str(out_file), "seq": seq, "hash": head_hash}
    if json_out:
        emit_json(result)
    else:
        out.print(f"anchored entry {seq} in {out_file}", highlight=False, markup=False)


@key_app.command("rotate")
@refusals
def key_rotate(json_out: JsonFlag = False) -> None:
    """Encrypt everything under a new data key (contacts, pseudonyms, notes, labels,
    evidence keys, audit details), then retire the old key. Readers keep working
    throughout: both keys are in the key file until every token is re-encrypted."""
    from ansim.pipeline import keys

    result = keys.rotate(open_workspace())
    if json_out:
        emit_json(result)
    else:
        out.print(f"key rotated: {result['reencrypted']} values re-encrypted", highlight=False)


@index_app.command("rebuild")
@refusals
def index_rebuild(json_out: JsonFlag = False) -> None:
    """Recreate every index from the store (the store is the source of truth)."""
    from ansim.store import audit

    workspace = open_workspace()
    with workspace.session() as session:
        sizes = workspace.banks.rebuild(session)
        audit.record(session, workspace.actor, "index.rebuild", "index", sizes)
    if json_out:
        emit_json(sizes)
        return
    out.print(_("rebuilt every index; entries:"))
    print_fields(out, [(name, str(count)) for name, count in sizes.items()], indent=2)


@index_app.command("status")
@refusals
def index_status(json_out: JsonFlag = False) -> None:
    """Entries per index, after checking each against the store."""
    workspace = open_workspace()
    with workspace.store.session() as session:
        rebuilt = workspace.banks.ensure_consistent(session)
    result = {"sizes": workspace.banks.sizes(), "rebuilt": rebuilt}
    if json_out:
        emit_json(result)
        return
    print_fields(out, [(name, str(count)) for name, count in result["sizes"].items()])
    if rebuilt:
        out.print(
            _("rebuilt from the store (they disagreed with it): {names}").format(
                names=", ".join(rebuilt)
            )
        )


@log_app.command("errors")
@refusals
def log_errors(
    clear: Annotated[bool, typer.Option(help="Delete the error log after showing it.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Unexpected errors, newest last, their messages unsealed with the data key.

    Example: ansim log errors --clear
    """
    from ansim.settings import Settings
    from ansim.store.error_log import clear_error_log, read_errors
    from ansim.store.home import resolve_home

    home = resolve_home(Settings.from_environment())
    errors = read_errors(home.log_dir, home.key_file)
    if clear:
        clear_error_log(home.log_dir)
    if json_out:
        emit_json([vars(error) for error in errors])
        return
    if not errors:
        out.print(_("no unexpected errors logged"))
        return
    for error in errors:
        out.print(f"--- {error.at}", highlight=False, markup=False)
        out.print(error.frames, highlight=False, markup=False, end="")
        for message in error.messages:
            print_fields(out, [(_("message"), message)], indent=2)
