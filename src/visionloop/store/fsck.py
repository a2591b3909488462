"""``visionloop fsck``: re-hash every blob and check every reference.

Errors are things that are wrong (a corrupt or missing blob, a dangling
reference). Unreferenced blobs and temp files are the harmless leftovers of an
interrupted write: reported, not errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from visionloop.errors import BlobNotFoundError, StoreError
from visionloop.store import schema
from visionloop.store.blobs import sha256_hex
from visionloop.workspace import Workspace


@dataclass
class FsckReport:
    blobs_checked: int = 0
    references_checked: int = 0
    errors: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    temp_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blobs_checked": self.blobs_checked,
            "references_checked": self.references_checked,
            "errors": self.errors,
            "unreferenced_blobs": len(self.unreferenced),
            "temp_files": self.temp_files,
        }


def fsck(
    ws: Workspace, progress: Callable[[int], None] | None = None, *, clean_temp: bool = False
) -> FsckReport:
    """Check the whole workspace; see the module docstring. ``clean_temp`` removes the temp files of
    interrupted writes (do not use it while an import is running)."""
    rep = FsckReport()
    present: set[str] = set()
    for oid in ws.blobs:
        try:
            data = ws.blobs.get(oid)
        except (BlobNotFoundError, StoreError, OSError) as exc:
            rep.errors.append(f"blob {oid}: unreadable ({exc})")
            continue
        if sha256_hex(data) != oid:
            rep.errors.append(
                f"blob {oid}: content does not match its name (corrupt); restore it from a "
                "backup or re-import its source"
            )
        present.add(oid)
        rep.blobs_checked += 1
        if progress:
            progress(1)
    temps = ws.blobs.temp_files()
    rep.temp_files = len(temps)
    if clean_temp:
        for path in temps:
            path.unlink(missing_ok=True)
    referenced: set[str] = set()

    def need(oid: str, what: str) -> None:
        rep.references_checked += 1
        referenced.add(oid)
        if oid not in present:
            rep.errors.append(f"{what} names blob {oid}, which is missing")

    with ws.engine.connect() as conn:
        for (oid,) in conn.execute(select(schema.images.c.oid)):
            need(oid, f"image {oid[:12]}")
        for iid, oid in conn.execute(select(schema.imports.c.id, schema.imports.c.report_oid)):
            if oid:
                need(oid, f"import {iid} (its report)")
        label_oids = set(conn.scalars(select(schema.labels.c.oid)))
        image_oids = set(conn.scalars(select(schema.images.c.oid)))
        for img, lid, loid_img in conn.execute(
            select(schema.items.c.image_oid, schema.items.c.labels_id, schema.labels.c.image_oid).select_from(
                schema.items.outerjoin(schema.labels, schema.items.c.labels_id == schema.labels.c.id)
            )
        ):
            rep.references_checked += 1
            if lid is not None and loid_img != img:
                rep.errors.append(f"item {img[:12]} points at labels {lid}, which belong to image {loid_img}")
        for vid, moid in conn.execute(
            select(schema.dataset_versions.c.id, schema.dataset_versions.c.manifest_oid)
        ):
            need(moid, f"dataset version {vid[:12]}")
            if moid not in present:
                continue
            manifest = json.loads(ws.blobs.get(moid))
            for img, loid, _split, name in manifest["items"]:
                rep.references_checked += 2
                if img not in image_oids:
                    rep.errors.append(
                        f"dataset version {vid[:12]}: item {name} names image {img}, which has no row"
                    )
                if loid not in label_oids:
                    rep.errors.append(
                        f"dataset version {vid[:12]}: item {name} names labels {loid}, which have no row"
                    )
    rep.unreferenced = sorted(present - referenced)
    return rep
