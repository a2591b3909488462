"""COCO detection JSON: one or more files (one per split), ``bbox`` as ``[x, y, w, h]``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from visionloop.data.formats.base import (
    ExportSample,
    SourceItem,
    SourceScan,
    inside,
    rel,
    safe_join,
    split_of,
    walk_files,
)
from visionloop.data.validate import RawBox, finding


def coco_files(root: Path) -> list[Path]:
    """JSON files under ``root`` that look like COCO detection annotations."""
    out = []
    for p in walk_files(root):
        if p.suffix.lower() != ".json" or p.stat().st_size > 2**31:
            continue
        with p.open("rb") as f:
            head = f.read(4096)
        if b'"images"' in head or b'"annotations"' in head or b'"categories"' in head:
            out.append(p)
    return out


def _image_path(root: Path, jfile: Path, name: str, split: str | None) -> Path | None:
    bases = [jfile.parent, root, root / "images", jfile.parent.parent / "images", jfile.parent.parent]
    if split:
        bases += [root / "images" / split, root / split, jfile.parent.parent / split]
    for base in bases:
        p = safe_join(base, name)
        if p is not None and p.is_file() and inside(root, p):
            return p
    return None


def _read_one(root: Path, jfile: Path, scan: SourceScan, classes: dict[str, None]) -> None:
    where = rel(jfile, root)
    try:
        doc: Any = json.loads(jfile.read_text(encoding="utf-8"))
        images, anns, cats = doc["images"], doc.get("annotations", []), doc.get("categories", [])
        cat_names = {int(c["id"]): str(c["name"]) for c in cats}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        scan.findings.append(
            finding(
                "invalid_annotation", where, f"is not a COCO detection file ({type(exc).__name__}: {exc})"
            )
        )
        return
    for c in cats:
        classes.setdefault(str(c["name"]), None)
    split = split_of(jfile.stem)
    by_image: dict[Any, list[RawBox]] = {}
    for i, ann in enumerate(anns):
        try:
            image_id, cat = ann["image_id"], int(ann["category_id"])
            if not isinstance(image_id, int | str):
                raise TypeError(f"image_id {image_id!r} is not a number or string")
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise TypeError(f"bbox {bbox!r} is not [x, y, width, height]")
        except (KeyError, TypeError, ValueError) as exc:
            scan.findings.append(finding("invalid_box", where, f"annotation #{i} is malformed ({exc})"))
            continue
        name = cat_names.get(cat, f"<category id {cat}>")
        x, y, w, h = bbox
        try:
            box = RawBox(x, y, float(x) + float(w), float(y) + float(h), name, bool(ann.get("iscrowd", 0)))
        except (TypeError, ValueError):
            box = RawBox(x, y, "nan", "nan", name)
        by_image.setdefault(image_id, []).append(box)
    ids = set()
    for img in images:
        try:
            image_id, file_name = img["id"], str(img["file_name"])
            if not isinstance(image_id, int | str):
                raise TypeError(image_id)
        except (KeyError, TypeError):
            scan.findings.append(
                finding(
                    "invalid_annotation",
                    where,
                    f"has an image entry without id or file_name: {str(img)[:80]}",
                )
            )
            continue
        ids.add(image_id)
        if safe_join(root, file_name) is None:
            scan.findings.append(
                finding(
                    "unsafe_path",
                    where,
                    f"image {image_id} names the file {file_name!r}, outside the dataset",
                )
            )
            continue
        path = _image_path(root, jfile, file_name, split)
        if path is None:
            scan.findings.append(
                finding(
                    "image_file_missing",
                    where,
                    f"image {image_id} names {file_name!r}, which is not in the dataset",
                )
            )
            continue
        size = None
        if isinstance(img.get("width"), int) and isinstance(img.get("height"), int):
            size = (img["width"], img["height"])
        scan.items.append(SourceItem(rel(path, root), path, where, by_image.get(image_id, []), size, split))
    for image_id, boxes in by_image.items():
        if image_id not in ids:
            scan.findings.append(
                finding(
                    "annotation_without_image",
                    where,
                    f"{len(boxes)} annotation(s) refer to image id {image_id!r}, "
                    "which the file does not list",
                )
            )


def read_coco(root: Path) -> SourceScan:
    """Scan a folder holding COCO JSON file(s) and their images."""
    scan = SourceScan("coco", root)
    classes: dict[str, None] = {}
    for jfile in coco_files(root):
        _read_one(root, jfile, scan, classes)
    scan.classes = list(classes)
    return scan


def write_coco(out: Path, samples: Iterable[ExportSample], classes: list[str]) -> None:
    """Write ``annotations/instances_{split}.json`` and ``images/{split}/…``."""
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    cats = [{"id": i + 1, "name": c, "supercategory": "none"} for i, c in enumerate(classes)]
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    docs: dict[str, dict[str, Any]] = {}
    ann_id = 0
    for image_id, s in enumerate(samples, 1):
        doc = docs.setdefault(s.split, {"images": [], "annotations": [], "categories": cats})
        file_name = s.name
        target = out / "images" / s.split / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s.data)
        doc["images"].append({"id": image_id, "file_name": file_name, "width": s.width, "height": s.height})
        for x1, y1, x2, y2, c, crowd in s.boxes:
            ann_id += 1
            w, h = round(x2 - x1, 4), round(y2 - y1, 4)
            doc["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": cat_id[c],
                    "bbox": [x1, y1, w, h],
                    "area": round(w * h, 4),
                    "iscrowd": int(crowd),
                }
            )
    for split, doc in docs.items():
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc), encoding="utf-8")
