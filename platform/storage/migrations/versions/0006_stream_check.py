"""stream checks (码流检测): the stream_checks table and the cameras' latest stream verdict

Revision ID: 0006_stream_check
Revises: 0006_alarm_sinks
Create Date: 2026-12-07 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tianwang.storage.models

revision: str = "0006_stream_check"
down_revision: str | None = "0006_alarm_sinks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=20), nullable=False),
        sa.Column("ts", tianwang.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("bitrate_kbps", sa.Float(), nullable=True),
        sa.Column("declared", sa.JSON(), nullable=True),
        sa.Column("measured", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("received_at", tianwang.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("stream_checks", schema=None) as batch_op:
        batch_op.create_index("ix_stream_checks_device_ts", ["device_id", "ts"], unique=False)
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_stream_at", tianwang.storage.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_stream_faults", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("last_stream_error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("last_stream_error")
        batch_op.drop_column("last_stream_faults")
        batch_op.drop_column("last_stream_at")
    with op.batch_alter_table("stream_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_stream_checks_device_ts")
    op.drop_table("stream_checks")
