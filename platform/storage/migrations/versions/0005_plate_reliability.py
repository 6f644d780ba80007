"""passes: plate class (号牌种类) and per-character plate confidence (PlateCharReliability) of GA/T 1400

Revision ID: 0005_plate_reliability
Revises: 0004
Create Date: 2026-12-07 20:30:00

On PostgreSQL `passes` is partitioned by day: ALTER TABLE on the partitioned table adds (and drops)
the columns on every partition, the default one included, and partitions made later copy the
parent (`partitions.py` creates them LIKE it). Both columns are nullable without a default, so
adding them rewrites no row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_plate_reliability"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("passes", sa.Column("plate_class", sa.String(length=2), nullable=True))
    op.add_column("passes", sa.Column("plate_char_reliability", sa.String(length=160), nullable=True))


def downgrade() -> None:
    # SQLite cannot drop columns in place: batch mode copies the table there (a no-op wrapper on PostgreSQL)
    with op.batch_alter_table("passes") as batch:
        batch.drop_column("plate_char_reliability")
        batch.drop_column("plate_class")
