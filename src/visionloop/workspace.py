"""The workspace: settings, metadata database and blob store in one folder.

Found like git finds a repository: ``--workspace DIR``, else the
``VISIONLOOP_WORKSPACE`` environment variable, else the nearest ``.visionloop``
at or above the current directory. ``DIR`` may name the workspace folder
itself or a project folder holding ``.visionloop``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from visionloop.config import CONFIG_NAME, Settings, load_settings, render_settings
from visionloop.errors import UsageError, WorkspaceExistsError, WorkspaceNotFoundError
from visionloop.store import schema
from visionloop.store.blobs import BlobStore
from visionloop.store.db import make_engine, migrate

WORKSPACE_DIR = ".visionloop"
ENV_VAR = "VISIONLOOP_WORKSPACE"
_CLASS_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time visionloop writes is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Workspace:
    """An open workspace. Create with :func:`init_workspace` or :func:`open_workspace`."""

    def __init__(self, root: Path, settings: Settings, engine: Engine, blobs: BlobStore) -> None:
        self.root = root
        self.settings = settings
        self.engine = engine
        self.blobs = blobs

    @property
    def tmp(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(exist_ok=True)
        return path

    @property
    def reports(self) -> Path:
        path = self.root / "reports"
        path.mkdir(exist_ok=True)
        return path

    def classes(self) -> list[str]:
        """Class names in id order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.classes.c.name).order_by(schema.classes.c.id)).all()
        return [r[0] for r in rows]

    def add_classes(self, names: Iterable[str]) -> list[str]:
        """Append unknown class names (ids are never reused or reordered)."""
        known = self.classes()
        new = [n for n in dict.fromkeys(names) if n not in known]
        for name in new:
            check_class_name(name)
        if new:
            rows = [{"id": len(known) + i, "name": n, "created_at": utcnow()} for i, n in enumerate(new)]
            with self.engine.begin() as c:
                c.execute(insert(schema.classes), rows)
        return known + new

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_class_name(name: str) -> None:
    if not isinstance(name, str) or not _CLASS_NAME.match(name) or name != name.strip():
        raise UsageError(
            f"invalid class name {name!r}",
            fix="use 1-200 printable characters without leading or trailing spaces",
        )


def _open(root: Path) -> Workspace:
    settings = load_settings(root / CONFIG_NAME)
    engine = make_engine(settings.database_url(root))
    migrate(engine)
    blobs = BlobStore(
        settings.blob_url(root), tmp_dir=root / "tmp" / "blobs", options=dict(settings.storage.blob_options)
    )
    ws = Workspace(root, settings, engine, blobs)
    declared = list(settings.project.classes)
    if declared and set(declared) - set(ws.classes()):
        ws.add_classes(declared)
    return ws


def init_workspace(
    directory: Path | str = ".",
    *,
    name: str | None = None,
    classes: Sequence[str] = (),
    database: str = "",
    blobs: str = "blobs",
    blob_options: dict[str, Any] | None = None,
) -> Workspace:
    """Create a workspace at ``directory/.visionloop`` (settings, database, blob store).

    ``database`` is any SQLAlchemy URL (empty: SQLite inside the workspace); ``blobs`` a folder
    relative to the workspace or any fsspec URL.
    """
    project = Path(directory).resolve()
    root = project if project.name == WORKSPACE_DIR else project / WORKSPACE_DIR
    if (root / CONFIG_NAME).exists():
        raise WorkspaceExistsError(
            "a workspace already exists here",
            where=str(root),
            fix="use it as it is, or choose another directory",
        )
    for c in classes:
        check_class_name(c)
    root.mkdir(parents=True, exist_ok=True)
    default_name = project.parent.name if project.name == WORKSPACE_DIR else project.name
    text = render_settings(name or default_name, list(dict.fromkeys(classes)), database, blobs, blob_options)
    tmp = root / f".{CONFIG_NAME}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, root / CONFIG_NAME)
    try:
        return _open(root)
    except Exception:
        (root / CONFIG_NAME).unlink()  # a workspace whose store cannot open is not created
        raise
    finally:
        (root / ".gitignore").write_text("# visionloop's data; version it with visionloop, not git.\n*\n")


def find_workspace(start: Path | str | None = None) -> Path:
    """Resolve the workspace folder (see the module docstring)."""
    if start is None and os.environ.get(ENV_VAR):
        start = os.environ[ENV_VAR]
        explicit = True
    else:
        explicit = start is not None
    base = Path(start or ".").resolve()
    candidates = (
        [base, base / WORKSPACE_DIR] if explicit else [p / WORKSPACE_DIR for p in (base, *base.parents)]
    )
    if not explicit and (base / CONFIG_NAME).exists():
        candidates.insert(0, base)
    for c in candidates:
        if (c / CONFIG_NAME).is_file():
            return c
    where = str(base) if explicit else f"{base} and its parents"
    raise WorkspaceNotFoundError(
        "no visionloop workspace found",
        where=where,
        fix=f"run `visionloop init` first, or pass --workspace DIR (or set {ENV_VAR})",
    )


def open_workspace(path: Path | str | None = None) -> Workspace:
    """Open the workspace at ``path`` (or discover it) and migrate its database."""
    return _open(find_workspace(path))
