"""hotlists: scope, active hours, directions, retro days, withdrawal reason; alarms: retro, acknowledgement

Revision ID: 0006_hotlist_scope
Revises: 0005_devhealth
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tianwang.storage.models import UTCDateTime

revision: str = "0006_hotlist_scope"
down_revision: str | None = "0005_devhealth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hotlists", sa.Column("revoked_reason", sa.String(500), nullable=True))
    op.add_column("hotlists", sa.Column("scope", sa.JSON(), nullable=True))
    op.add_column("hotlists", sa.Column("active_hours", sa.String(11), nullable=True))
    op.add_column("hotlists", sa.Column("directions", sa.JSON(), nullable=True))
    op.add_column("hotlists", sa.Column("retro_days", sa.Integer(), nullable=True))
    op.add_column("alarms", sa.Column("retro", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("alarms", sa.Column("ack_verdict", sa.String(20), nullable=True))
    op.add_column("alarms", sa.Column("ack_note", sa.String(1000), nullable=True))
    op.add_column("alarms", sa.Column("ack_by", sa.String(100), nullable=True))
    op.add_column("alarms", sa.Column("ack_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        for name in ("ack_at", "ack_by", "ack_note", "ack_verdict", "retro"):
            batch.drop_column(name)
    with op.batch_alter_table("hotlists") as batch:
        for name in ("retro_days", "directions", "active_hours", "scope", "revoked_reason"):
            batch.drop_column(name)
