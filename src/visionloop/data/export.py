"""``visionloop dataset export``: write a dataset version in COCO, YOLO or VOC.

Lossless: every image (also those without boxes), every box, every class and
every split survive ``import → export → import``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionloop.data import labels as labelset
from visionloop.data.formats.base import ExportSample, export_name
from visionloop.data.formats.coco import write_coco
from visionloop.data.formats.voc import write_voc
from visionloop.data.formats.yolo import write_yolo
from visionloop.data.versions import load_manifest, resolve
from visionloop.errors import UsageError
from visionloop.store import schema
from visionloop.workspace import Workspace

WRITERS = {"coco": write_coco, "yolo": write_yolo, "voc": write_voc}


def iter_samples(
    ws: Workspace, manifest: dict[str, Any], progress: Callable[[int], None] | None = None
) -> Iterator[ExportSample]:
    """The version's items with image bytes and boxes, in manifest order."""
    items = manifest["items"]
    taken: set[tuple[str, str]] = set()
    for i in range(0, len(items), 500):
        chunk = items[i : i + 500]
        oids = [e[0] for e in chunk]
        loids = list({e[1] for e in chunk})
        with ws.engine.connect() as conn:
            sizes = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    select(schema.images.c.oid, schema.images.c.width, schema.images.c.height).where(
                        schema.images.c.oid.in_(oids)
                    )
                )
            }
            boxes = {
                r[0]: r[1]
                for r in conn.execute(
                    select(schema.labels.c.oid, schema.labels.c.boxes).where(schema.labels.c.oid.in_(loids))
                )
            }
        for oid, loid, split, name in chunk:
            w, h = sizes[oid]
            short = export_name(name)
            if (split, short) in taken:  # two source folders held equal names: keep both
                stem, dot, suffix = short.rpartition(".")
                short = f"{stem}_{oid[:8]}.{suffix}" if dot else f"{short}_{oid[:8]}"
            taken.add((split, short))
            yield ExportSample(short, ws.blobs.get(oid), w, h, labelset.parse(boxes[loid]), split)
            if progress:
                progress(1)


def export_version(
    ws: Workspace, ref: str, fmt: str, out: Path | str, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write version ``ref`` to the new or empty folder ``out`` in ``fmt``."""
    if fmt not in WRITERS:
        raise UsageError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(WRITERS)}")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            "the export folder exists and is not empty", where=str(target), fix="choose a new or empty folder"
        )
    version = resolve(ws, ref)
    manifest = load_manifest(ws, version)
    classes = list(manifest["classes"])
    target.mkdir(parents=True, exist_ok=True)
    splits: Counter[str] = Counter()

    def counted() -> Iterator[ExportSample]:
        for s in iter_samples(ws, manifest, progress):
            splits[s.split] += 1
            yield s

    WRITERS[fmt](target, counted(), classes)
    return {
        "version": version.id,
        "format": fmt,
        "out": str(target),
        "images": sum(splits.values()),
        "splits": dict(splits),
        "boxes": version.n_boxes,
        "classes": classes,
    }
