"""checkpoints as GA/T 1400 describes them: type (卡口类型), use (卡口用途), and their lanes

Revision ID: 0005_checkpoint_attrs
Revises: 0005_plate_reliability
Create Date: 2026-12-07 21:00:00

Chained after 0005_plate_reliability on this branch (one head); both only add to 0004's schema, so
the lead may re-chain them in either order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_checkpoint_attrs"
down_revision: str | None = "0005_plate_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("checkpoints", sa.Column("tollgate_type", sa.String(length=2), nullable=True))
    op.add_column("checkpoints", sa.Column("tollgate_use", sa.String(length=2), nullable=True))
    op.create_table(
        "checkpoint_lanes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=20), nullable=False),
        sa.Column("lane_no", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=1), nullable=True),
        sa.Column("city_pass", sa.Integer(), nullable=True),
        sa.Column("speed_limit_kmh", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoints.checkpoint_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("checkpoint_id", "lane_no", name="uq_checkpoint_lanes_lane"),
    )
    op.create_index(op.f("ix_checkpoint_lanes_checkpoint_id"), "checkpoint_lanes", ["checkpoint_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_checkpoint_lanes_checkpoint_id"), table_name="checkpoint_lanes")
    op.drop_table("checkpoint_lanes")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("tollgate_use")
        batch.drop_column("tollgate_type")
