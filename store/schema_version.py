"""Which schema revision the store should be at, read from the migration files without
importing Alembic or SQLAlchemy: every command checks it on opening the home."""

from __future__ import annotations

import functools
import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Alembic's record of the schema's revision (its default name; env.py does not change it).
VERSION_TABLE = "alembic_version"
# `revision: str = "0005_users"`, `down_revision: str | None = None` in a migration file.
REVISION_LINE = re.compile(r'^(revision|down_revision)\b[^=\n]*=\s*(?:"([^"\n]*)"|None)\s*$', re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration, read from the `revision` and `down_revision` lines of the
    migration files. Importing Alembic to ask its ScriptDirectory would cost each command
    ~0.4 s CPU; a test checks that both give the same head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        fields = {name: value for name, value in REVISION_LINE.findall(path.read_text())}
        if "revision" not in fields:
            raise RuntimeError(f'no `revision = "..."` line in migration {path.name}')
        revisions.add(fields["revision"])
        if fields.get("down_revision"):
            parents.add(fields["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {sorted(heads)}")
    return heads.pop()
