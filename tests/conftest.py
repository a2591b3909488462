"""Shared fixtures: workspaces on SQLite and PostgreSQL, BCCD, small synthetic datasets."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.data.synth import generate
from visionloop.workspace import Workspace, init_workspace

ROOT = Path(__file__).resolve().parents[1]
BCCD = Path(os.environ.get("VISIONLOOP_BCCD", ROOT.parent / "shared" / "datasets" / "bccd"))
PG_ADMIN_URL = os.environ.get("VISIONLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def bccd() -> Path:
    """The BCCD dataset beside the project (skipped with a reason where it is absent)."""
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"BCCD dataset not found at {BCCD} (set VISIONLOOP_BCCD to its folder)")
    return BCCD


def _pg_admin() -> object | None:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:  # any failure to connect means: no server here
        return None


@pytest.fixture(scope="session")
def pg_admin() -> object:
    engine = _pg_admin()
    if engine is None:
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}")
    return engine


@pytest.fixture
def pg_url(pg_admin: object) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from sqlalchemy import text

    name = f"vl_test_{secrets.token_hex(6)}"
    with pg_admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with pg_admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over both database backends."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh SQLite workspace."""
    workspace = init_workspace(tmp_path / "project")
    yield workspace
    workspace.close()


@pytest.fixture
def any_ws(tmp_path: Path, backend_url: str) -> Iterator[Workspace]:
    """A fresh workspace on SQLite and on PostgreSQL."""
    workspace = init_workspace(tmp_path / "project", database=backend_url)
    yield workspace
    workspace.close()


@pytest.fixture(scope="session")
def synth_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic YOLO dataset (read-only: copy before changing it)."""
    out = tmp_path_factory.mktemp("synth") / "day"
    generate(out, images=24, seed=1, domain="day", size=96)
    return out
