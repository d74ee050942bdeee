"""crawler: crawl runs, frontier/visited set, evidence bundles, crawl-history signal index

Revision ID: 0003_crawler
Revises: 0002_casework
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_crawler"
down_revision: str | None = "0002_casework"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signal", schema=None) as batch_op:
        batch_op.create_index("ix_signal_kind_item", ["kind", "item_id"], unique=False)
    op.create_table(
        "crawl_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "crawl_url",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("resolved_ip", sa.String(length=64), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["crawl_run.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["scanned_item.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "url_hash", name="uq_crawl_url_run_url"),
    )
    with op.batch_alter_table("crawl_url", schema=None) as batch_op:
        batch_op.create_index("ix_crawl_url_run_state", ["run_id", "state", "depth"], unique=False)
        batch_op.create_index(batch_op.f("ix_crawl_url_sha256"), ["sha256"], unique=False)
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.String(length=64), nullable=False),
        sa.Column("takedown_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=False),
        sa.Column("warc_sha256", sa.String(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["takedown_id"], ["takedown.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["scanned_item.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_takedown_id"), ["takedown_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_bundle_id"), ["bundle_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_kind_item")
    op.drop_table("evidence")
    op.drop_table("crawl_url")
    op.drop_table("crawl_run")
