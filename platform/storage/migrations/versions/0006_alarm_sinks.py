"""alarm sinks (webhook, MQTT) and the durable outbox of alarm deliveries

Revision ID: 0006_alarm_sinks
Revises: 0006_hotlist_scope
Create Date: 2026-12-07 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tianwang.storage.models

revision: str = "0006_alarm_sinks"
down_revision: str | None = "0006_hotlist_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = tianwang.storage.models.UTCDateTime
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarm_sinks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("hotlist_ids", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "alarm_deliveries",
        sa.Column("id", BIG, nullable=False),
        sa.Column("alarm_id", BIG, nullable=False),
        sa.Column("sink_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTC(timezone=True), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("delivered_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sink_id"], ["alarm_sinks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alarm_id", "sink_id", name="uq_alarm_deliveries_alarm_sink"),
    )
    op.create_index("ix_alarm_deliveries_sink_id", "alarm_deliveries", ["sink_id"])
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_alarm_deliveries_due",
        "alarm_deliveries",
        ["sink_id", "next_at"],
        postgresql_where=pending,
        sqlite_where=pending,
    )


def downgrade() -> None:
    op.drop_table("alarm_deliveries")
    op.drop_table("alarm_sinks")
