"""Exporting sealed evidence: decrypted only on request, into 0600 files, checked against
its row (bundle id and SHA-256) so a swapped file does not verify, and audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import EvidenceError, EvidenceStore, evidence_key_context
from ansim.store import audit
from ansim.store.crypto import KeyProblem
from ansim.store.tables import Evidence, Takedown
from cryptography.fernet import Fernet


def export_evidence(
    workspace: Workspace, evidence_id: int, out_dir: Path, recorded_to: str | None = None
) -> dict[str, Any]:
    """Decrypt one evidence bundle (WARC + manifest) into `out_dir`, digests checked; audited
    as written to `recorded_to` (where the files end up: the client's folder when the
    server exports into memory and hands them over), else to `out_dir`."""
    with workspace.session() as session:
        row = session.get(Evidence, evidence_id)
        if row is None:
            raise CaseworkError(f"unknown evidence id {evidence_id} (never recorded, or purged)")
        takedown = session.get(Takedown, row.takedown_id) if row.takedown_id else None
        case_id = takedown.case_id if takedown is not None else None
        try:
            if row.data_key_encrypted is not None:
                bundle_key = workspace.cipher.decrypt(
                    row.data_key_encrypted, evidence_key_context(row.bundle_id)
                )
                store = EvidenceStore(workspace.home.evidence_dir, Fernet(bundle_key))
            else:  # sealed before per-bundle keys, with the data key itself
                store = EvidenceStore(workspace.home.evidence_dir, workspace.cipher.fernet())
            paths = store.export(row.bundle_id, out_dir, expected_sha256=row.warc_sha256)
        except (EvidenceError, KeyProblem) as exc:
            raise CaseworkError(f"evidence {evidence_id}: {exc}") from exc
        audit.record(
            session,
            workspace.actor,
            "evidence.export",
            f"evidence:{evidence_id}",
            {"takedown": row.takedown_id},
            private={"to": recorded_to or str(out_dir), "warc_sha256": row.warc_sha256},
            case_id=case_id,
        )
        return {
            "evidence_id": evidence_id,
            "takedown_id": row.takedown_id,
            "files": [str(p) for p in paths],
            "warc_sha256": row.warc_sha256,
        }
