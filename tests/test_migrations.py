"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go back down."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from tianwang.storage import migrate
from tianwang.storage.models import Base


def test_models_match_migrations(db_url: str) -> None:
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(mc, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert migrate.is_current(eng, db_url)
    finally:
        eng.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    eng = create_engine(url)
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)
    assert "cameras" in inspect(eng).get_table_names()
    eng.dispose()
