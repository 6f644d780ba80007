"""cameras and checkpoints: onvif_trust_device_addresses (use the addresses a device names, not NAT-rewritten)

Revision ID: 0005_nat
Revises: 0005_agent_zones
Create Date: 2026-12-07 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_nat"
down_revision: str | None = "0005_agent_zones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("cameras", "checkpoints")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "onvif_trust_device_addresses", sa.Boolean(), nullable=False, server_default=sa.false()
            ),
        )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("onvif_trust_device_addresses")
