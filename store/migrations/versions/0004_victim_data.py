"""victim data: encrypted pseudonyms, notes and labels; per-bundle evidence keys; audit free
text out of the chain; store settings (key check value, unkeyed audit prefix); notice files;
opaque per-item notice references; append-only audit rows

Revision ID: 0004_victim_data
Revises: 0003_crawler
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_victim_data"
down_revision: str | None = "0003_crawler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENCRYPTED_COLUMNS = (
    ("support_case", "pseudonym_encrypted"),
    ("service", "note_encrypted"),
    ("reference", "label_encrypted"),
    ("confirmation", "note_encrypted"),
    ("evidence", "data_key_encrypted"),
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END",
)
PG_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION ansim_audit_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit rows are append-only' USING ERRCODE = 'insufficient_privilege'; "
    "END $$",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION ansim_audit_append_only()",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC",
)


def upgrade() -> None:
    for table, column in ENCRYPTED_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("takedown", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_ref", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_takedown_public_ref"), ["public_ref"], unique=False)
    op.create_table(
        "audit_private",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.String(length=20), nullable=True),
        sa.Column("detail_encrypted", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_private", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_private_case_id"), ["case_id"], unique=False)
    op.create_table(
        "store_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "notice_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notice.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notice_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_file_notice_id"), ["notice_id"], unique=False)
    # Entries chained before this revision were hashed without a key; the verifier accepts
    # that up to here and no further (store.audit).
    op.execute(
        "INSERT INTO store_setting (name, value) "
        "SELECT 'audit_unkeyed_until', CAST(COALESCE(MAX(seq), 0) AS VARCHAR(20)) FROM audit"
    )
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else PG_APPEND_ONLY
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
        op.execute("DROP FUNCTION IF EXISTS ansim_audit_append_only()")
    op.drop_table("notice_file")
    op.drop_table("store_setting")
    op.drop_table("audit_private")
    with op.batch_alter_table("takedown", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_takedown_public_ref"))
        batch_op.drop_column("public_ref")
    for table, column in reversed(ENCRYPTED_COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
