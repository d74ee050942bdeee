"""`ansim key rotate`: everything encrypted under a new data key, without downtime.

The new key goes in front of the old one in the key file first (every reader then
decrypts both, and encrypts with the new one), every token is re-encrypted in one
transaction (MultiFernet.rotate; legacy tokens get their associated data on the way,
legacy plaintext pseudonyms, notes and labels get encrypted), the store's key check value
moves to the new key, and only then is the old key dropped from the file. Evidence
sealed with the data key itself (before per-bundle keys) is re-sealed under a key of its
own, so the old key can go.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import (
    SealedWriter,
    bundle_paths,
    evidence_key_context,
    iter_unsealed,
)
from ansim.pipeline.workspaces import KEY_CHECK
from ansim.store import audit
from ansim.store.crypto import (
    Cipher,
    case_context,
    key_check_value,
    takedown_context,
    write_private_file,
)
from ansim.store.private_files import open_private
from ansim.store.tables import (
    AuditPrivate,
    Case,
    Confirmation,
    Evidence,
    Reference,
    Service,
    StoreSetting,
)
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session


def rotate(workspace: Workspace) -> dict[str, Any]:
    cipher = workspace.cipher
    old_keys = cipher.keys()
    new_key = Fernet.generate_key()
    key_file = cipher.key_file
    write_private_file(key_file, b"\n".join([new_key, *old_keys]) + b"\n")
    cipher.reload()
    resealed: list[tuple[Path, Path]] = []
    try:
        with workspace.session() as session:
            count = _reencrypt(session, cipher)
            count += _reseal_legacy_evidence(session, cipher, workspace.home.evidence_dir, resealed)
            session.get(StoreSetting, KEY_CHECK, with_for_update=True).value = key_check_value(
                new_key
            )
            audit.record(session, workspace.actor, "key.rotate", "key", {"reencrypted": count})
    except BaseException:
        for temporary, _ in resealed:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in resealed:
        os.replace(temporary, final)
    write_private_file(key_file, new_key + b"\n")
    cipher.reload()
    return {
        "reencrypted": count,
        "evidence_resealed": len(resealed) // 2,
        "key_file": str(key_file),
    }


def _reencrypt(session: Session, cipher: Cipher) -> int:
    count = 0

    def again(token: bytes | None, context: str) -> bytes | None:
        nonlocal count
        if token is None:
            return None
        count += 1
        return cipher.rotate(token, context)

    def seal(text: str | None, context: str) -> bytes | None:
        nonlocal count
        count += 1
        return cipher.encrypt_text(text, context)

    for case in session.execute(select(Case)).scalars():
        case.contact_encrypted = again(case.contact_encrypted, case_context(case.id, "contact"))
        context = case_context(case.id, "pseudonym")
        if case.pseudonym is not None:
            case.pseudonym_encrypted, case.pseudonym = seal(case.pseudonym, context), None
        else:
            case.pseudonym_encrypted = again(case.pseudonym_encrypted, context)
    for service in session.execute(select(Service)).scalars():
        context = case_context(service.case_id, "note")
        if service.note:
            service.note_encrypted, service.note = seal(service.note, context), ""
        else:
            service.note_encrypted = again(service.note_encrypted, context)
    for reference in session.execute(select(Reference)).scalars():
        context = case_context(reference.case_id, "label")
        if reference.label is not None:
            reference.label_encrypted, reference.label = seal(reference.label, context), None
        else:
            reference.label_encrypted = again(reference.label_encrypted, context)
    for confirmation in session.execute(select(Confirmation)).scalars():
        context = takedown_context(confirmation.takedown_id, "confirmation-note")
        if confirmation.note is not None:
            confirmation.note_encrypted = seal(confirmation.note, context)
            confirmation.note = None
        else:
            confirmation.note_encrypted = again(confirmation.note_encrypted, context)
    for row in session.execute(select(Evidence)).scalars():
        row.data_key_encrypted = again(row.data_key_encrypted, evidence_key_context(row.bundle_id))
    for private in session.execute(select(AuditPrivate)).scalars():
        private.detail_encrypted = again(private.detail_encrypted, f"audit:{private.seq}")  # type: ignore[assignment]
    return count


def _reseal_legacy_evidence(
    session: Session, cipher: Cipher, root: Path, resealed: list[tuple[Path, Path]]
) -> int:
    """Bundles sealed with the data key itself get a key of their own (new files are
    written beside the old ones and swapped in after the commit)."""
    legacy = list(
        session.execute(select(Evidence).where(Evidence.data_key_encrypted.is_(None))).scalars()
    )
    keys: dict[str, bytes] = {}
    old: MultiFernet = cipher.fernet()
    for row in legacy:
        if row.bundle_id not in keys:
            keys[row.bundle_id] = Fernet.generate_key()
            for path in bundle_paths(root, row.bundle_id):
                if not path.exists():
                    continue
                temporary = path.with_name(path.name + ".rekeyed")
                with (
                    open_private(temporary) as raw,
                    SealedWriter(raw, Fernet(keys[row.bundle_id])) as sealed,
                ):
                    for chunk in iter_unsealed(path, old):
                        sealed.write(chunk)
                resealed.append((temporary, path))
        row.data_key_encrypted = cipher.encrypt(
            keys[row.bundle_id], evidence_key_context(row.bundle_id)
        )
    return len(legacy)
