"""the audit log records refused calls too: outcome (ok | refused) and the reason

Revision ID: 0008_audit_refusals
Revises: 0007_url_credentials
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_audit_refusals"
down_revision: str | None = "0007_url_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # adding columns is neither UPDATE, DELETE nor TRUNCATE: the append-only triggers allow it
    with op.batch_alter_table("audit_log") as t:
        t.add_column(sa.Column("outcome", sa.String(length=16), nullable=False, server_default="ok"))
        t.add_column(sa.Column("reason", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as t:
        t.drop_column("reason")
        t.drop_column("outcome")
