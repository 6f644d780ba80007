"""audit log: TRUNCATE refused too (a statement trigger), so only DROP or a table owner who
disables the trigger on purpose can empty it

Revision ID: 0005_bounds
Revises: 0005_nat
Create Date: 2026-12-07 20:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_bounds"
down_revision: str | None = "0005_nat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no TRUNCATE (and no append-only trigger: it is the single-machine default)
    # the DDL is frozen here, not imported: a later change to the app must not rewrite history
    op.execute(
        """
        CREATE FUNCTION audit_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_no_truncate()")
