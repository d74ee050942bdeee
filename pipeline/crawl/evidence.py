"""Handing over a crawl's sealed evidence: one bundle decrypted, checked and audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import EvidenceError, EvidenceStore
from ansim.store import audit
from ansim.store.tables import Evidence


def export_evidence(workspace: Workspace, evidence_id: int, out_dir: Path) -> dict[str, Any]:
    """Decrypt one evidence bundle (WARC + manifest) into `out_dir`, digests checked; audited."""
    with workspace.session() as session:
        row = session.get(Evidence, evidence_id)
        if row is None:
            raise CaseworkError(f"unknown evidence id {evidence_id}")
        store = EvidenceStore(workspace.home.root / "evidence", workspace.cipher.fernet())
        try:
            paths = store.export(row.bundle_id, out_dir)
        except EvidenceError as exc:
            raise CaseworkError(f"evidence {evidence_id}: {exc}") from exc
        audit.record(
            session,
            workspace.actor,
            "evidence.export",
            f"evidence:{evidence_id}",
            {"takedown": row.takedown_id, "to": str(out_dir), "warc_sha256": row.warc_sha256},
        )
        return {
            "evidence_id": evidence_id,
            "takedown_id": row.takedown_id,
            "files": [str(p) for p in paths],
            "warc_sha256": row.warc_sha256,
        }
