"""pass search: a trigram index on the plate (pg_trgm) for wildcard and look-alike plate patterns

Revision ID: 0005_pass_search
Revises: 0005_checkpoint_attrs
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_pass_search"
down_revision: str | None = "0005_checkpoint_attrs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since PostgreSQL 13
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # on PostgreSQL a GIN trigram index, made on every day partition too; on SQLite a plain one
    op.create_index(
        "ix_passes_plate_trgm",
        "passes",
        ["plate_no"],
        postgresql_using="gin",
        postgresql_ops={"plate_no": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_passes_plate_trgm", table_name="passes")
