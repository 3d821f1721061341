"""Alembic migrations of the Proactive schema (PostgreSQL and SQLite); run with `proactive db upgrade`."""
