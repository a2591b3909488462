"""YOLO txt: ``images/…`` beside ``labels/…`` (``class cx cy w h`` normalized), names from
``data.yaml`` or ``classes.txt``. Split folders (``train``/``val``/``valid``/``test``) are kept.

As in Ultralytics, an image without a label file is a background image (no boxes).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from visionloop.data.formats.base import (
    SPLITS,
    ExportSample,
    SourceItem,
    SourceScan,
    image_files,
    key,
    rel,
    split_of,
    walk_files,
)
from visionloop.data.validate import RawBox, finding

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
TXT_NAMES = ("classes.txt", "obj.names", "classes.names")


def class_file(root: Path) -> Path | None:
    for name in (*YAML_NAMES, *TXT_NAMES):
        hits = sorted(root.rglob(name), key=lambda p: len(p.parts))
        if hits:
            return hits[0]
    return None


def _names(root: Path, scan: SourceScan) -> list[str]:
    f = class_file(root)
    if f is None:
        return []
    where = rel(f, root)
    if f.suffix in (".yaml", ".yml"):
        try:
            doc: Any = yaml.safe_load(f.read_text(encoding="utf-8"))
            names = doc["names"]
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            scan.findings.append(
                finding("invalid_annotation", where, f"has no readable `names` list ({exc})")
            )
            return []
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names, key=int)]
        return [str(n) for n in names]
    return [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _label_path(root: Path, image: Path) -> Path:
    parts = list(image.relative_to(root).parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
    return root.joinpath(*parts).with_suffix(".txt")


def _parse(text: str, names: list[str], where: str, scan: SourceScan) -> list[RawBox]:
    boxes = []
    for n, line in enumerate(text.splitlines(), 1):
        vals = line.split()
        if not vals:
            continue
        try:
            cls = int(vals[0])
            nums = [float(v) for v in vals[1:]]
        except ValueError:
            scan.findings.append(
                finding("invalid_box", where, f"line {n} is not `class cx cy w h`: {line[:60]!r}")
            )
            continue
        name = names[cls] if 0 <= cls < len(names) else f"<class index {cls}>"
        if len(nums) == 4:
            cx, cy, w, h = nums
            boxes.append(RawBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, name, normalized=True))
        elif len(nums) >= 6 and len(nums) % 2 == 0:  # a segmentation polygon: keep its bounding box
            xs, ys = nums[0::2], nums[1::2]
            boxes.append(RawBox(min(xs), min(ys), max(xs), max(ys), name, normalized=True))
        else:
            scan.findings.append(
                finding("invalid_box", where, f"line {n} has {len(nums)} numbers; expected 4")
            )
    return boxes


def read_yolo(root: Path) -> SourceScan:
    """Scan a YOLO dataset folder."""
    scan = SourceScan("yolo", root)
    names = _names(root, scan)
    scan.classes = list(names)
    used: set[str] = set()
    for image in image_files(root):
        label = _label_path(root, image)
        if not label.is_file():
            label = image.with_suffix(".txt")
        split = split_of(image.relative_to(root).parts[:-1])
        if label.is_file():
            used.add(key(label))
            boxes = _parse(label.read_text(encoding="utf-8", errors="replace"), names, rel(label, root), scan)
            scan.items.append(SourceItem(rel(image, root), image, rel(label, root), boxes, None, split))
        else:
            scan.items.append(SourceItem(rel(image, root), image, rel(image, root), [], None, split))
    for txt in walk_files(root):
        if (
            txt.suffix == ".txt"
            and txt.name not in TXT_NAMES
            and key(txt) not in used
            and "labels" in txt.relative_to(root).parts
        ):
            scan.findings.append(
                finding(
                    "annotation_without_image",
                    rel(txt, root),
                    "is a label file whose image is not in the dataset",
                )
            )
    return scan


def write_yolo(out: Path, samples: Iterable[ExportSample], classes: list[str]) -> None:
    """Write ``images/{split}/…``, ``labels/{split}/….txt`` and ``data.yaml``."""
    index = {c: i for i, c in enumerate(classes)}
    seen = set(SPLITS[:2])
    for s in samples:
        seen.add(s.split)
        image = out / "images" / s.split / s.name
        label = (out / "labels" / s.split / s.name).with_suffix(".txt")
        image.parent.mkdir(parents=True, exist_ok=True)
        label.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(s.data)
        lines = []
        for x1, y1, x2, y2, c, _crowd in s.boxes:
            cx, cy = (x1 + x2) / 2 / s.width, (y1 + y2) / 2 / s.height
            w, h = (x2 - x1) / s.width, (y2 - y1) / s.height
            lines.append(f"{index[c]} {cx:.8f} {cy:.8f} {w:.8f} {h:.8f}\n")
        label.write_text("".join(lines), encoding="utf-8")
    splits = sorted(seen, key=SPLITS.index)
    doc = {"path": ".", **{s: f"images/{s}" for s in splits}, "names": list(classes)}
    (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
