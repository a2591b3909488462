"""The image browser's read model: the workspace's items with their current boxes, filtered by class,
split, status and labels origin (a read-only query; nothing here changes the workspace)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from visionloop.data.split import choose_split
from visionloop.data.versions import SPLITS
from visionloop.store import schema
from visionloop.workspace import Workspace

#: Item statuses the browser always offers (others found in the workspace are added).
KNOWN_STATUSES = ("labeled", "unlabeled", "in_review", "proposed", "rejected")
ITEMS, L, IMG = schema.items, schema.labels, schema.images


@dataclass(frozen=True)
class Filters:
    """What to show; None (or empty) means any."""

    cls: str | None = None
    split: str | None = None
    status: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class ItemView:
    """One item as the browser draws it: the image, its current boxes and where they came from."""

    image_oid: str
    name: str
    status: str
    split: str
    origin: str | None
    author: str | None
    width: int
    height: int
    boxes: list[dict[str, Any]]


def _rows(ws: Workspace, filters: Filters) -> list[Any]:
    q = (
        select(
            ITEMS.c.image_oid,
            ITEMS.c.name,
            ITEMS.c.status,
            ITEMS.c.source_split,
            L.c.origin,
            L.c.author,
            L.c.boxes,
            IMG.c.width,
            IMG.c.height,
        )
        .join(IMG, IMG.c.oid == ITEMS.c.image_oid)
        .outerjoin(L, L.c.id == ITEMS.c.labels_id)
        .order_by(ITEMS.c.name, ITEMS.c.image_oid)
    )
    if filters.status:
        q = q.where(ITEMS.c.status == filters.status)
    if filters.origin:
        q = q.where(L.c.origin == filters.origin)
    with ws.engine.connect() as conn:
        return list(conn.execute(q))


def browse_items(
    ws: Workspace, filters: Filters, *, limit: int = 48, offset: int = 0
) -> tuple[list[ItemView], int]:
    """One page of the items matching ``filters`` (by name) and how many match in all."""
    keep = ws.settings.split.keep_source_splits
    matched: list[ItemView] = []
    for r in _rows(ws, filters):
        boxes: list[dict[str, Any]] = json.loads(r.boxes) if r.boxes else []
        if filters.cls and not any(b["class"] == filters.cls for b in boxes):
            continue
        split = choose_split(r.image_oid, r.source_split, ws.settings.split, keep)
        if filters.split and split != filters.split:
            continue
        matched.append(
            ItemView(r.image_oid, r.name, r.status, split, r.origin, r.author, r.width, r.height, boxes)
        )
    return matched[offset : offset + limit], len(matched)


def facets(ws: Workspace) -> dict[str, list[str]]:
    """The values each filter can take in this workspace: classes, splits, statuses, origins."""
    with ws.engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(select(ITEMS.c.status).distinct())]
        origins = [
            o
            for (o,) in conn.execute(
                select(L.c.origin).join(ITEMS, ITEMS.c.labels_id == L.c.id).distinct().order_by(L.c.origin)
            )
        ]
    return {
        "classes": ws.classes(),
        "splits": list(SPLITS),
        "statuses": list(dict.fromkeys([*KNOWN_STATUSES, *sorted(statuses)])),
        "origins": origins,
    }


def image_media_type(ws: Workspace, oid: str) -> str | None:
    """The MIME type of a stored image (None when ``oid`` names no image: other blobs are not served)."""
    with ws.engine.connect() as conn:
        fmt = conn.execute(select(IMG.c.format).where(IMG.c.oid == oid)).scalar()
    if fmt is None:
        return None
    return {
        "jpeg": "image/jpeg",
        "mpo": "image/jpeg",
        "png": "image/png",
        "bmp": "image/bmp",
        "webp": "image/webp",
    }.get(str(fmt).lower(), "application/octet-stream")
