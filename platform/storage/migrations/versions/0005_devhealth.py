"""device health: clock skew and its fault, snapshot failures as evidence

Revision ID: 0005_devhealth
Revises: 0005_bounds
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tianwang.storage.models

revision: str = "0005_devhealth"
down_revision: str | None = "0005_bounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = tianwang.storage.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_snapshot_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_snapshot_failed_at", UTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("clock_skew_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("clock_fault_since", UTC(timezone=True), nullable=True))
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.alter_column("sha256", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("width", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("height", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM snapshots WHERE error IS NOT NULL")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.alter_column("height", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("width", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("sha256", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("clock_fault_since")
        batch_op.drop_column("clock_skew_s")
        batch_op.drop_column("last_snapshot_failed_at")
        batch_op.drop_column("last_snapshot_error")
        batch_op.drop_column("snapshot_failures")
