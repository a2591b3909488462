"""Alembic environment: visionloop hands in a live connection."""

from __future__ import annotations

from alembic import context

from visionloop.store.db import VERSION_TABLE
from visionloop.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, version_table=VERSION_TABLE
)
with context.begin_transaction():
    context.run_migrations()
