"""signal: the owner indexes cover only rows that have that owner

A signal row belongs to a reference or to a crawled item, never both, so half of every
owner index was NULL keys: a hash-list import of 10M reference signals also built two
item indexes of 10M NULLs, and every crawled item's signals went into the reference
index. Partial indexes (`WHERE x IS NOT NULL`) hold only the rows they are looked up by;
every query of them names the owner (`=`, `IN`, a join, `IS NOT NULL`), which both
SQLite's and PostgreSQL's planners take as implying the index's condition.

Revision ID: 0008_partial_signal_indexes
Revises: 0007_bank_counter
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_partial_signal_indexes"
down_revision: str | None = "0007_bank_counter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (columns, the owner column whose rows it holds)
OWNER_INDEXES = {
    "ix_signal_reference_id": (["reference_id"], "reference_id"),
    "ix_signal_item_id": (["item_id"], "item_id"),
    "ix_signal_kind_item": (["kind", "item_id"], "item_id"),
}


def upgrade() -> None:
    for name, (columns, owner) in OWNER_INDEXES.items():
        op.drop_index(name, table_name="signal")
        condition = sa.text(f"{owner} IS NOT NULL")
        op.create_index(name, "signal", columns, sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    for name, (columns, _) in OWNER_INDEXES.items():
        op.drop_index(name, table_name="signal")
        op.create_index(name, "signal", columns)
