from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from visionloop.errors import StoreError
from visionloop.store import schema
from visionloop.store.db import current_revision, head_revision, make_engine, migrate, table_names
from visionloop.workspace import init_workspace, open_workspace


def test_migrations_create_exactly_the_schema(any_ws) -> None:
    names = set(table_names(any_ws.engine)) - {"visionloop_schema_version"}
    assert names == set(schema.metadata.tables)
    assert current_revision(any_ws.engine) == head_revision()


def test_migrated_columns_match_the_metadata(any_ws) -> None:
    from sqlalchemy import inspect

    insp = inspect(any_ws.engine)
    for name, table in schema.metadata.tables.items():
        assert {c["name"] for c in insp.get_columns(name)} == set(table.columns.keys()), name


def test_migrate_is_idempotent(any_ws) -> None:
    migrate(any_ws.engine)
    migrate(any_ws.engine)
    assert current_revision(any_ws.engine) == head_revision()


def test_sqlite_runs_in_wal_with_foreign_keys(ws) -> None:
    with ws.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_foreign_keys_are_enforced(any_ws) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), any_ws.engine.begin() as conn:
        conn.execute(
            insert(schema.items).values(
                image_oid="0" * 64,
                name="x",
                status="labeled",
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )


def test_reopening_keeps_data(tmp_path: Path, backend_url: str) -> None:
    ws = init_workspace(tmp_path / "p", classes=["cat", "dog"], database=backend_url)
    ws.close()
    again = open_workspace(tmp_path / "p")
    assert again.classes() == ["cat", "dog"]
    again.close()


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot use database URL"):
        make_engine("nosuchdb://x")


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot reach or migrate the database"):
        init_workspace(tmp_path / "p", database="postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert not (tmp_path / "p" / ".visionloop" / "visionloop.toml").exists()
