"""casework: hosts, notices, re-checks, confirmations, reappearance links, purge date

Revision ID: 0002_casework
Revises: 0001
Create Date: 2026-11-25 00:59:28.879649
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_casework"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmation_rule",
        sa.Column("case_type", sa.String(length=32), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("case_type"),
    )
    op.create_table(
        "host",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("abuse_email", sa.String(length=320), nullable=True),
        sa.Column("form_url", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("domain"),
    )
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=True),
        sa.Column("host_domain", sa.String(length=255), nullable=False),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_domain"],
            ["host.domain"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_host_domain"), ["host_domain"], unique=False)

    op.create_table(
        "confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("takedown_id", sa.Integer(), nullable=False),
        sa.Column("analyst", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedown.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("takedown_id", "analyst", name="uq_confirmation_takedown_analyst"),
    )
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_confirmation_takedown_id"), ["takedown_id"], unique=False
        )

    op.create_table(
        "notice_takedown",
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("takedown_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice.id"],
        ),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedown.id"],
        ),
        sa.PrimaryKeyConstraint("notice_id", "takedown_id"),
    )
    op.create_table(
        "recheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("takedown_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["takedown_id"],
            ["takedown.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recheck", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recheck_takedown_id"), ["takedown_id"], unique=False)

    with op.batch_alter_table("support_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("takedown", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("reappearance_of", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_takedown_location_case", type_="unique")
        batch_op.create_unique_constraint(
            "uq_takedown_location_case", ["location", "case_id", "generation"]
        )
        batch_op.create_index(
            batch_op.f("ix_takedown_reappearance_of"), ["reappearance_of"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_takedown_reappearance_of", "takedown", ["reappearance_of"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("takedown", schema=None) as batch_op:
        batch_op.drop_constraint("fk_takedown_reappearance_of", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_takedown_reappearance_of"))
        batch_op.drop_constraint("uq_takedown_location_case", type_="unique")
        batch_op.create_unique_constraint("uq_takedown_location_case", ["location", "case_id"])
        batch_op.drop_column("reappearance_of")
        batch_op.drop_column("generation")

    with op.batch_alter_table("support_case", schema=None) as batch_op:
        batch_op.drop_column("purged_at")

    with op.batch_alter_table("recheck", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recheck_takedown_id"))

    op.drop_table("recheck")
    op.drop_table("notice_takedown")
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_confirmation_takedown_id"))

    op.drop_table("confirmation")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_host_domain"))

    op.drop_table("notice")
    op.drop_table("host")
    op.drop_table("confirmation_rule")
