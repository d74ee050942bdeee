"""What the supervisor's report page and the admin's key and index pages show: the
report's figures and its plot drawn in memory, the data key's state, every bank's state.

None of it holds victim data: the report counts items by status, case type and host; the
key page shows check values (a keyed digest of the key, not the key) and file facts; the
index page counts entries."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime
from typing import Any

from ansim.casework import report_service
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.pipeline import keys
from ansim.pipeline.workspaces import KEY_CHECK
from ansim.store.crypto import KeyProblem
from ansim.store.tables import AuditEntry, StoreSetting
from sqlalchemy import select


def report_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The query's dates (YYYY-MM-DD, UTC), refused with a plain message when malformed."""
    return (
        report_service.parse_moment(since) if since else None,
        report_service.parse_moment(until) if until else None,
    )


def report_figures(
    workspace: Workspace, since: str | None, until: str | None, case_id: str | None
) -> dict[str, Any]:
    start, end = report_window(since, until)
    return report_service.build_report(workspace, start, end, case_id or None)


def report_png(
    workspace: Workspace, since: str | None, until: str | None, case_id: str | None
) -> bytes:
    """The report's plot, drawn into memory (never a file)."""
    start, end = report_window(since, until)
    buffer = io.BytesIO()
    report_service.build_report(workspace, start, end, case_id or None, plot=buffer)
    return buffer.getvalue()


def key_status(workspace: Workspace) -> dict[str, Any]:
    """The data key file (where, its mode, how many keys: two means a rotation did not
    finish), whether its newest key is the one the store expects, and the last rotation."""
    key_file = workspace.cipher.key_file
    shown: dict[str, Any] = {"key_file": str(key_file), "problem": None}
    try:
        check_values = workspace.cipher.check_values()
        mode = stat.S_IMODE(key_file.stat().st_mode)
    except (KeyProblem, OSError) as exc:
        return {**shown, "problem": str(exc)}
    with workspace.store.read_session() as session:
        stored = session.get(StoreSetting, KEY_CHECK)
        rotated = session.execute(
            select(AuditEntry.at, AuditEntry.actor)
            .where(AuditEntry.action == "key.rotate")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).first()
    return {
        **shown,
        "mode": f"{mode:04o}",
        "private": mode & 0o077 == 0,
        "inside_home": key_file.resolve().is_relative_to(workspace.home.root.resolve()),
        "keys": len(check_values),
        "check_value": check_values[0],
        "store_check_value": stored.value if stored else None,
        "matches_store": stored is not None and stored.value == check_values[0],
        "last_rotated_at": rotated.at if rotated else None,
        "last_rotated_by": rotated.actor if rotated else None,
    }


def rotate_key(workspace: Workspace) -> dict[str, Any]:
    """`ansim key rotate`, as the signed-in admin (audited by the rotation itself)."""
    if key_status(workspace).get("problem"):
        raise CaseworkError("the data key has a problem; fix it before rotating")
    result = keys.rotate(workspace)
    return {"reencrypted": result["reencrypted"], "evidence_resealed": result["evidence_resealed"]}


def index_status(workspace: Workspace) -> dict[str, list[dict[str, Any]]]:
    """Both sets of banks, per signal type (nothing rebuilt: this only looks)."""
    with workspace.store.read_session() as session:
        shown = {
            "reference": workspace.banks.status(session),
            "history": workspace.history.status(session),  # type: ignore[attr-defined]
        }
    for rows in shown.values():
        for row in rows:
            saved = row.pop("saved_at")
            row["saved_at"] = datetime.fromtimestamp(saved, UTC) if saved else None
    return shown
