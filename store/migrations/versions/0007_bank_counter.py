"""bank_counter: each signal bank's entries and last signal id, kept by triggers

A bank (`pipeline.banks`) checks its index files against the store's checkpoint for its
signal kind: how many rows it holds and the newest id. Counting them (count + max over
the signal rows of that kind) took ~9 s at 10M entries; this table holds the answer in one
row per (kind, owner), owner "reference" (signals of consented references) or "item"
(the crawl history).

Triggers keep it, in the transaction that changes the signal rows, whoever writes them:
the ORM, Core inserts, raw DBAPI executemany, COPY, ON DELETE CASCADE. A helper that every
writer calls would trust every present and future writer to call it; a trigger cannot be
forgotten. SQLite has only row triggers; PostgreSQL gets statement triggers with transition
tables, one aggregate per statement (a COPY of 10M rows updates the counter once).

`last_id` only grows: the newest id the bank ever held, like the index manifest's
checkpoint. A reference whose consent changes moves its signals in or out of the count
(withdrawal also deletes them; either order in the transaction gives the same count).
A signal whose reference row is gone (a cascade) counts as consented, as it must have been
to keep signals.

Note for later migrations: SQLite's batch_alter_table recreates the table and drops its
triggers; a migration that batch-alters `signal` or `reference` must create them again.

Revision ID: 0007_bank_counter
Revises: 0006_match_region
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_bank_counter"
down_revision: str | None = "0006_match_region"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO bank_counter (kind, owner, entries, last_id)
SELECT signal.kind, 'reference', count(*), max(signal.id)
FROM signal JOIN reference ON signal.reference_id = reference.id
WHERE reference.consent = 'given' AND signal.item_id IS NULL
GROUP BY signal.kind
UNION ALL
SELECT kind, 'item', count(*), max(id) FROM signal WHERE item_id IS NOT NULL GROUP BY kind
"""

# Owner of a signal row: the crawl history when it has an item, else the reference bank
# (counted only while its reference's consent is given).
SQLITE_TRIGGERS = [
    """
CREATE TRIGGER bank_counter_signal_insert AFTER INSERT ON signal
WHEN NEW.item_id IS NOT NULL OR (NEW.reference_id IS NOT NULL AND coalesce(
    (SELECT consent FROM reference WHERE id = NEW.reference_id), 'given') = 'given')
BEGIN
    INSERT INTO bank_counter (kind, owner, entries, last_id)
    VALUES (NEW.kind, CASE WHEN NEW.item_id IS NULL THEN 'reference' ELSE 'item' END, 1, NEW.id)
    ON CONFLICT (kind, owner) DO UPDATE
    SET entries = entries + 1, last_id = max(last_id, excluded.last_id);
END
""",
    """
CREATE TRIGGER bank_counter_signal_delete AFTER DELETE ON signal
WHEN OLD.item_id IS NOT NULL OR (OLD.reference_id IS NOT NULL AND coalesce(
    (SELECT consent FROM reference WHERE id = OLD.reference_id), 'given') = 'given')
BEGIN
    UPDATE bank_counter SET entries = entries - 1
    WHERE kind = OLD.kind
        AND owner = CASE WHEN OLD.item_id IS NULL THEN 'reference' ELSE 'item' END;
END
""",
    """
CREATE TRIGGER bank_counter_consent AFTER UPDATE OF consent ON reference
WHEN OLD.consent IS NOT NEW.consent AND (OLD.consent = 'given' OR NEW.consent = 'given')
BEGIN
    INSERT INTO bank_counter (kind, owner, entries, last_id)
    SELECT kind, 'reference', CASE WHEN NEW.consent = 'given' THEN count(*) ELSE -count(*) END,
        max(id)
    FROM signal WHERE reference_id = NEW.id AND item_id IS NULL GROUP BY kind
    ON CONFLICT (kind, owner) DO UPDATE
    SET entries = entries + excluded.entries,
        last_id = max(last_id, CASE WHEN NEW.consent = 'given' THEN excluded.last_id ELSE 0 END);
END
""",
]
SQLITE_DROPS = [
    "DROP TRIGGER IF EXISTS bank_counter_signal_insert",
    "DROP TRIGGER IF EXISTS bank_counter_signal_delete",
    "DROP TRIGGER IF EXISTS bank_counter_consent",
]

# `sign` +1 for added rows, -1 for removed ones; rows sorted so that concurrent statements
# lock the counter rows in one order.
POSTGRESQL_FUNCTIONS = [
    """
CREATE FUNCTION bank_counter_signal_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bank_counter (kind, owner, entries, last_id)
    SELECT s.kind, CASE WHEN s.item_id IS NULL THEN 'reference' ELSE 'item' END,
        count(*), max(s.id)
    FROM new_rows s LEFT JOIN reference r ON r.id = s.reference_id
    WHERE s.item_id IS NOT NULL
        OR (s.reference_id IS NOT NULL AND coalesce(r.consent, 'given') = 'given')
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (kind, owner) DO UPDATE
    SET entries = bank_counter.entries + excluded.entries,
        last_id = greatest(bank_counter.last_id, excluded.last_id);
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION bank_counter_signal_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE bank_counter c SET entries = c.entries - gone.entries
    FROM (
        SELECT s.kind, CASE WHEN s.item_id IS NULL THEN 'reference' ELSE 'item' END AS owner,
            count(*) AS entries
        FROM old_rows s LEFT JOIN reference r ON r.id = s.reference_id
        WHERE s.item_id IS NOT NULL
        OR (s.reference_id IS NOT NULL AND coalesce(r.consent, 'given') = 'given')
        GROUP BY 1, 2 ORDER BY 1, 2
    ) gone
    WHERE c.kind = gone.kind AND c.owner = gone.owner;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION bank_counter_consent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bank_counter (kind, owner, entries, last_id)
    SELECT s.kind, 'reference',
        sum(CASE WHEN n.consent = 'given' THEN 1 ELSE -1 END),
        coalesce(max(s.id) FILTER (WHERE n.consent = 'given'), 0)
    FROM new_refs n JOIN old_refs o ON o.id = n.id
    JOIN signal s ON s.reference_id = n.id AND s.item_id IS NULL
    WHERE o.consent IS DISTINCT FROM n.consent AND 'given' IN (o.consent, n.consent)
    GROUP BY s.kind ORDER BY s.kind
    ON CONFLICT (kind, owner) DO UPDATE
    SET entries = bank_counter.entries + excluded.entries,
        last_id = greatest(bank_counter.last_id, excluded.last_id);
    RETURN NULL;
END $$
""",
]
POSTGRESQL_TRIGGERS = [
    "CREATE TRIGGER bank_counter_signal_insert AFTER INSERT ON signal "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION bank_counter_signal_insert()",
    "CREATE TRIGGER bank_counter_signal_delete AFTER DELETE ON signal "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION bank_counter_signal_delete()",
    # Transition tables allow no column list (UPDATE OF consent): every update of
    # references runs it, and it finds nothing unless consent changed.
    "CREATE TRIGGER bank_counter_consent AFTER UPDATE ON reference "
    "REFERENCING OLD TABLE AS old_refs NEW TABLE AS new_refs FOR EACH STATEMENT "
    "EXECUTE FUNCTION bank_counter_consent()",
]
POSTGRESQL_DROPS = [
    "DROP TRIGGER IF EXISTS bank_counter_signal_insert ON signal",
    "DROP TRIGGER IF EXISTS bank_counter_signal_delete ON signal",
    "DROP TRIGGER IF EXISTS bank_counter_consent ON reference",
    "DROP FUNCTION IF EXISTS bank_counter_signal_insert()",
    "DROP FUNCTION IF EXISTS bank_counter_signal_delete()",
    "DROP FUNCTION IF EXISTS bank_counter_consent()",
]


def upgrade() -> None:
    op.create_table(
        "bank_counter",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=16), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("kind", "owner"),
    )
    op.execute(BACKFILL)
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_FUNCTIONS + POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    drops = POSTGRESQL_DROPS if op.get_bind().dialect.name == "postgresql" else SQLITE_DROPS
    for statement in drops:
        op.execute(statement)
    op.drop_table("bank_counter")
