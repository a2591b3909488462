"""Alembic migrations of the metadata database (run by visionloop itself)."""
