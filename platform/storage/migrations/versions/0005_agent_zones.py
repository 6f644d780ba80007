"""agent tokens bound to zones and agent ids

Revision ID: 0005_agent_zones
Revises: 0005_pass_search
Create Date: 2026-12-07 20:20:00

Tokens made before this keep working: their zones stay NULL (all zones, warned about at start-up),
and their agent ids are the agents that already heartbeated with them (none yet: the first one to
heartbeat binds the token).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_agent_zones"
down_revision: str | None = "0005_pass_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zones", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("agent_ids", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_zones", sa.JSON(none_as_null=True), nullable=True))

    bind = op.get_bind()
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("role", sa.String),
        sa.column("agent_ids", sa.JSON(none_as_null=True)),
    )
    agents = sa.table("agents", sa.column("agent_id", sa.String), sa.column("token_name", sa.String))
    seen: dict[str, list[str]] = {}
    for agent_id, token_name in bind.execute(sa.select(agents.c.agent_id, agents.c.token_name)):
        seen.setdefault(token_name, []).append(agent_id)
    for token_id, name in bind.execute(
        sa.select(tokens.c.id, tokens.c.name).where(tokens.c.role == "agent")
    ).all():
        if name in seen:
            bind.execute(
                sa.update(tokens).where(tokens.c.id == token_id).values(agent_ids=sorted(seen[name]))
            )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("allowed_zones")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("agent_ids")
        batch_op.drop_column("zones")
