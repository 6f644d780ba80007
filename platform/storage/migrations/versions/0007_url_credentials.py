"""the credentials of registry URLs (rtsp_url, snapshot_url) kept apart, encrypted

Revision ID: 0007_url_credentials
Revises: 0006_stream_check
Create Date: 2026-12-07 21:20:00

Rows whose URLs still hold `user:password@` are sealed by the API at its start
(tianwang.cameras.service.seal_url_credentials): the key is the service's, not the migration's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_url_credentials"
down_revision: str | None = "0006_stream_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as t:
        t.add_column(sa.Column("url_credentials_enc", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as t:
        t.drop_column("url_credentials_enc")
