"""Persistence: the database (SQLAlchemy models, sessions, Alembic migrations) and the object store."""
