"""The metadata database: engine creation and schema migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign
keys on; any other SQLAlchemy URL (PostgreSQL in production) works unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError

from visionloop.errors import SchemaError, StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
#: Our own name for Alembic's bookkeeping table: Optuna, which shares the database, uses the default.
VERSION_TABLE = "visionloop_schema_version"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with visionloop's connection settings."""
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(
            f"cannot use database URL {url!r} ({exc})",
            where="storage.database",
            fix="give a valid SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
            "(install the `scale` extra for PostgreSQL)",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return str(head)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
        return None if rev is None else str(rev)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there)."""
    from alembic import command

    try:
        current = current_revision(engine)
        head = head_revision()
        if current == head:
            return
        if current is not None and current > head:
            raise SchemaError(
                f"the database schema ({current}) is newer than this visionloop ({head})",
                where=str(engine.url.render_as_string(hide_password=True)),
                fix="upgrade visionloop",
            )
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot reach or migrate the database ({exc.__class__.__name__}: {exc})",
            where=engine.url.render_as_string(hide_password=True),
            fix="check that the database server is running and the URL is right",
        ) from None


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
