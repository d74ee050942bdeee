"""match.region: where the reference sits in the item, for local-feature matches

Revision ID: 0006_match_region
Revises: 0005_users
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_match_region"
down_revision: str | None = "0005_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("match") as batch:
        batch.add_column(sa.Column("region", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("match") as batch:
        batch.drop_column("region")
