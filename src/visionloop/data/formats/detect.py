"""Which format a dataset folder is in, and its reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from visionloop.data.formats.base import SourceScan, image_files, walk_files
from visionloop.data.formats.coco import coco_files, read_coco
from visionloop.data.formats.images import read_images
from visionloop.data.formats.voc import read_voc
from visionloop.data.formats.yolo import class_file, read_yolo
from visionloop.errors import FormatDetectionError, UsageError

READERS: dict[str, Callable[[Path], SourceScan]] = {
    "voc": read_voc,
    "coco": read_coco,
    "yolo": read_yolo,
    "images": read_images,
}


def detect_format(root: Path) -> str:
    """``voc``, ``coco``, ``yolo`` or ``images``, from the folder's contents."""
    if coco_files(root):
        return "coco"
    xmls = [p for p in walk_files(root) if p.suffix.lower() == ".xml"]
    if (root / "Annotations").is_dir() or any(b"<annotation" in p.read_bytes()[:512] for p in xmls[:20]):
        return "voc"
    if class_file(root) is not None or any(p.name == "labels" and p.is_dir() for p in root.rglob("labels")):
        return "yolo"
    if image_files(root):
        return "images"
    raise FormatDetectionError(
        "cannot tell the dataset's format: no COCO JSON, VOC XML, YOLO labels or images",
        where=str(root),
        fix="check the path, or pass --format voc|coco|yolo|images",
    )


def read_source(root: Path, fmt: str | None = None) -> SourceScan:
    """Scan ``root`` with the reader of ``fmt`` (detected when ``None``)."""
    fmt = fmt or detect_format(root)
    if fmt not in READERS:
        raise UsageError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(READERS)}")
    return READERS[fmt](root)
