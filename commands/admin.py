"""`ansim init`, `ansim audit ...`, `ansim index ...`: the home, the audit chain, the indexes."""

from __future__ import annotations

import typer
from ansim.commands.common import JsonFlag, emit_json, out, refusals
from ansim.commands.display import print_fields
from ansim.commands.workspace import open_workspace
from ansim.i18n import _

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

index_app = typer.Typer(
    help="The signal indexes (rebuildable from the store).", no_args_is_help=True
)


@refusals
def init(json_out: JsonFlag = False) -> None:
    """Create $ANSIM_HOME (default ~/.ansim): database, schema and encryption key (mode 0600).

    Safe to run again: it only creates what is missing and upgrades the schema.
    """
    from ansim.pipeline.workspaces import init_workspace

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
        ready = (
            _("ansim home ready at {home} (key created)")
            if created_key
            else _("ansim home ready at {home} (key kept)")
        )
        out.print(ready.format(home=result["home"]), highlight=False)


@audit_app.command("verify")
@refusals
def audit_verify(json_out: JsonFlag = False) -> None:
    """Check the whole audit chain; exits 1 if any row was edited, deleted or reordered."""
    from ansim.store import audit

    workspace = open_workspace()
    with workspace.store.session() as session:
        checked, problems = audit.verify(session, workspace.home.audit_head_file)
    result = {"entries": checked, "ok": not problems, "problems": [p.__dict__ for p in problems]}
    if json_out:
        emit_json(result)
    elif problems:
        for p in problems:
            out.print(
                _("entry {seq}: {problem}").format(
                    seq=p.seq if p.seq is not None else "-", problem=p.message
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
