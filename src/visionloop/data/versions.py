"""Dataset versions: immutable snapshots named by their manifest's hash.

A manifest lists every labeled item as ``[image oid, labels oid, split, name]``
sorted by image oid, plus the class list. Same content → same bytes → same id,
so snapshotting twice with nothing new is a no-op.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from visionloop.data.split import choose_split
from visionloop.errors import AmbiguousVersionError, VersionNotFoundError
from visionloop.store import schema
from visionloop.store.blobs import sha256_hex
from visionloop.workspace import Workspace, utcnow

MANIFEST_FORMAT = "visionloop.manifest/1"
SPLITS = ("train", "val", "test")
Entry = tuple[str, str, str, str]  # image oid, labels oid, split, name


@dataclass(frozen=True)
class VersionInfo:
    id: str
    parent: str | None
    message: str
    created_at: datetime
    n_images: int
    n_boxes: int
    stats: dict[str, Any]

    @property
    def short(self) -> str:
        return self.id[:12]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["short"] = self.short
        return d


def _info(row: Any) -> VersionInfo:
    created = row.created_at
    return VersionInfo(row.id, row.parent_id, row.message, created, row.n_images, row.n_boxes, row.stats)


def _size_bucket(area: float) -> str:
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


def compute_stats(rows: list[tuple[str, str, str]], classes: list[str]) -> dict[str, Any]:
    """Statistics of (split, labels json, image oid) rows: the numbers ``dataset show`` prints."""
    per_class: Counter[str] = Counter()
    per_split_images: Counter[str] = Counter()
    per_split_boxes: Counter[str] = Counter()
    per_split_class: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    sizes: Counter[str] = Counter()
    per_image: Counter[str] = Counter()
    sides: list[float] = []
    for split, text, _oid in rows:
        recs = json.loads(text)
        per_split_images[split] += 1
        per_split_boxes[split] += len(recs)
        n = len(recs)
        per_image[
            "0" if n == 0 else "1" if n == 1 else "2-5" if n <= 5 else "6-20" if n <= 20 else "21+"
        ] += 1
        for r in recs:
            c = r["class"]
            per_class[c] += 1
            per_split_class[split][c] += 1
            x1, y1, x2, y2 = r["box"]
            area = (x2 - x1) * (y2 - y1)
            sizes[_size_bucket(area)] += 1
            sides.append(math.sqrt(area))
    sides.sort()
    q = (
        {f"p{p}": round(sides[min(len(sides) - 1, int(p / 100 * len(sides)))], 1) for p in (5, 50, 95)}
        if sides
        else {}
    )
    n_boxes = sum(per_class.values())
    return {
        "classes": classes,
        "boxes_per_class": {c: per_class[c] for c in classes},
        "splits": {
            s: {
                "images": per_split_images[s],
                "boxes": per_split_boxes[s],
                "boxes_per_class": {c: per_split_class[s][c] for c in classes},
            }
            for s in SPLITS
        },
        "boxes_per_image": {
            "mean": round(n_boxes / max(1, len(rows)), 2),
            "histogram": {k: per_image[k] for k in ("0", "1", "2-5", "6-20", "21+")},
        },
        "box_sizes": {
            "coco_area": {k: sizes[k] for k in ("small", "medium", "large")},
            "side_px_quantiles": q,
        },
    }


def snapshot(ws: Workspace, message: str, *, keep_splits: bool | None = None) -> tuple[VersionInfo, bool]:
    """Freeze the labeled items into a version; ``(version, created)`` (``created`` is False when the
    same content was already a version)."""
    keep = ws.settings.split.keep_source_splits if keep_splits is None else keep_splits
    classes = ws.classes()
    q = (
        select(
            schema.items.c.image_oid,
            schema.labels.c.oid,
            schema.items.c.source_split,
            schema.items.c.name,
            schema.labels.c.boxes,
        )
        .join(schema.labels, schema.items.c.labels_id == schema.labels.c.id)
        .where(schema.items.c.status == "labeled")
        .order_by(schema.items.c.image_oid)
    )
    entries: list[Entry] = []
    stat_rows: list[tuple[str, str, str]] = []
    with ws.engine.connect() as conn:
        for oid, loid, src_split, name, boxes in conn.execute(q):
            split = choose_split(oid, src_split, ws.settings.split, keep)
            entries.append((oid, loid, split, name))
            stat_rows.append((split, boxes, oid))
    manifest = json.dumps(
        {"format": MANIFEST_FORMAT, "classes": classes, "items": entries},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    vid = sha256_hex(manifest)
    with ws.engine.connect() as conn:
        row = conn.execute(select(schema.dataset_versions).where(schema.dataset_versions.c.id == vid)).first()
        if row is not None:
            return _info(row), False
        parent = conn.execute(
            select(schema.dataset_versions.c.id)
            .order_by(schema.dataset_versions.c.created_at.desc())
            .limit(1)
        ).scalar()
    stats = compute_stats(stat_rows, classes)
    stats["keep_source_splits"] = keep
    ws.blobs.put_bytes(manifest, vid)
    ws.blobs.flush()
    values = {
        "id": vid,
        "parent_id": parent,
        "message": message,
        "manifest_oid": vid,
        "n_images": len(entries),
        "n_boxes": sum(stats["boxes_per_class"].values()),
        "stats": stats,
        "created_at": utcnow(),
    }
    with ws.engine.begin() as conn:
        conn.execute(insert(schema.dataset_versions).values(**values))
    return VersionInfo(
        vid, parent, message, values["created_at"], len(entries), values["n_boxes"], stats
    ), True


def list_versions(ws: Workspace) -> list[VersionInfo]:
    """Every version, newest first."""
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(schema.dataset_versions).order_by(schema.dataset_versions.c.created_at.desc())
        )
        return [_info(r) for r in rows]


def resolve(ws: Workspace, ref: str) -> VersionInfo:
    """A version by full id, unique prefix (3+ hex digits) or ``latest``."""
    versions = list_versions(ws)
    if ref == "latest":
        if not versions:
            raise VersionNotFoundError(
                "the workspace has no dataset version yet", fix="run `visionloop dataset snapshot -m MESSAGE`"
            )
        return versions[0]
    hits = [v for v in versions if v.id.startswith(ref.lower())] if len(ref) >= 3 else []
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise AmbiguousVersionError(
            f"{ref!r} matches {len(hits)} dataset versions", fix="give more digits of the id"
        )
    raise VersionNotFoundError(
        f"no dataset version {ref!r}", where=str(ws.root), fix="list them with `visionloop dataset list`"
    )


def load_manifest(ws: Workspace, version: VersionInfo) -> dict[str, Any]:
    """The version's manifest (its bytes are verified against the id)."""
    data = ws.blobs.get(version.id, verify=True)
    doc: dict[str, Any] = json.loads(data)
    return doc


def show_version(ws: Workspace, ref: str) -> VersionInfo:
    return resolve(ws, ref)


def diff_versions(ws: Workspace, ref_a: str, ref_b: str) -> dict[str, Any]:
    """What changed from version A to version B: images added / removed / relabeled / moved
    between splits, and per-class box deltas."""
    a, b = resolve(ws, ref_a), resolve(ws, ref_b)
    ma = {e[0]: e for e in load_manifest(ws, a)["items"]}
    mb = {e[0]: e for e in load_manifest(ws, b)["items"]}
    added = sorted(mb.keys() - ma.keys())
    removed = sorted(ma.keys() - mb.keys())
    common = ma.keys() & mb.keys()
    relabeled = sorted(k for k in common if ma[k][1] != mb[k][1])
    moved = sorted(k for k in common if ma[k][2] != mb[k][2])
    ca, cb = a.stats["boxes_per_class"], b.stats["boxes_per_class"]
    classes = list(dict.fromkeys([*ca, *cb]))
    return {
        "from": a.id,
        "to": b.id,
        "added": len(added),
        "removed": len(removed),
        "relabeled": len(relabeled),
        "moved_split": len(moved),
        "unchanged": len(common) - len(relabeled),
        "boxes_per_class": {
            c: {"from": ca.get(c, 0), "to": cb.get(c, 0), "delta": cb.get(c, 0) - ca.get(c, 0)}
            for c in classes
        },
        "examples": {
            "added": [mb[k][3] for k in added[:10]],
            "removed": [ma[k][3] for k in removed[:10]],
            "relabeled": [mb[k][3] for k in relabeled[:10]],
        },
    }
