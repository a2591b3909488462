"""Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/`` (+ ``ImageSets/Main/*.txt`` splits).

XML is parsed with defusedxml: entity expansion, DTDs and external references
are refused, never evaluated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as defused_parse

from visionloop.data.formats.base import (
    SPLITS,
    ExportSample,
    SourceItem,
    SourceScan,
    image_files,
    inside,
    key,
    rel,
    safe_join,
    walk_files,
)
from visionloop.data.validate import RawBox, finding


def _text(node: Element | None, path: str, default: str = "") -> str:
    found = None if node is None else node.find(path)
    return (found.text or default).strip() if found is not None and found.text else default


def _splits(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for main in root.rglob("ImageSets/Main"):
        for split in SPLITS:
            f = main / f"{split}.txt"
            if f.is_file():
                for line in f.read_text(encoding="utf-8", errors="replace").split():
                    out.setdefault(line.strip(), split)
    return out


def _candidates(root: Path, xml: Path, filename: str) -> Iterator[Path]:
    if filename:
        for base in (root / "JPEGImages", xml.parent, xml.parent.parent / "JPEGImages", root):
            p = safe_join(base, filename)
            if p is not None:
                yield p
    for base in (root / "JPEGImages", xml.parent, xml.parent.parent / "JPEGImages"):
        for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".PNG", ".bmp"):
            yield base / f"{xml.stem}{suffix}"


def _find_image(root: Path, xml: Path, filename: str) -> Path | None:
    return next((c for c in _candidates(root, xml, filename) if c.is_file() and inside(root, c)), None)


def read_voc(root: Path) -> SourceScan:
    """Scan a Pascal VOC folder."""
    scan = SourceScan("voc", root)
    splits = _splits(root)
    used: set[str] = set()
    refused: set[str] = set()  # stems of refused annotation files: their images are not imported either
    classes: dict[str, None] = {}
    labels_txt = root / "labels.txt"
    if labels_txt.is_file():  # written by `dataset export --format voc`: keeps the class order
        for line in labels_txt.read_text(encoding="utf-8").splitlines():
            if line.strip():
                classes.setdefault(line.strip(), None)
    for xml in (p for p in walk_files(root) if p.suffix.lower() == ".xml"):
        where = rel(xml, root)
        try:
            tree = defused_parse(xml, forbid_dtd=True)  # defusedxml: no DTDs, entities or external refs
        except DefusedXmlException as exc:
            scan.findings.append(
                finding(
                    "unsafe_annotation",
                    where,
                    f"uses XML features that are refused for safety ({type(exc).__name__}); "
                    "its image is not imported",
                )
            )
            refused.add(xml.stem)
            continue
        except (ParseError, UnicodeDecodeError) as exc:
            scan.findings.append(
                finding(
                    "invalid_annotation", where, f"is not well-formed XML ({exc}); its image is not imported"
                )
            )
            refused.add(xml.stem)
            continue
        node = tree.getroot()
        if node is None or node.tag != "annotation":
            continue
        filename = _text(node, "filename")
        if filename and safe_join(root, filename) is None:
            scan.findings.append(
                finding("unsafe_path", where, f"names the image {filename!r}, outside the dataset")
            )
            continue
        image = _find_image(root, xml, filename)
        if image is None:
            scan.findings.append(
                finding(
                    "annotation_without_image",
                    where,
                    f"describes {filename or xml.stem!r} but no such image file exists",
                )
            )
            continue
        used.add(key(image))
        boxes = []
        for n, obj in enumerate(node.findall("object"), 1):
            name = _text(obj, "name")
            if not name:
                scan.findings.append(finding("invalid_box", where, f"object {n} has no class name"))
                continue
            classes.setdefault(name, None)
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (_text(bb, k, "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
            crowd = _text(obj, "difficult", "0") == "1"
            boxes.append(RawBox(x1, y1, x2, y2, cls=name, crowd=crowd))
        size = None
        try:
            size = (int(float(_text(node, "size/width", "0"))), int(float(_text(node, "size/height", "0"))))
        except (ValueError, OverflowError):
            size = None
        name = rel(image, root)
        scan.items.append(SourceItem(name, image, where, boxes, size, splits.get(xml.stem)))
    for image in image_files(root):
        if key(image) not in used and "Annotations" not in image.parts and image.stem not in refused:
            scan.items.append(
                SourceItem(rel(image, root), image, rel(image, root), None, None, splits.get(image.stem))
            )
    scan.classes = list(classes)
    return scan


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def write_voc(out: Path, samples: Iterable[ExportSample], classes: list[str]) -> None:
    """Write VOC: ``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/{split}.txt``, ``labels.txt``."""
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (out / "Annotations").mkdir(exist_ok=True)
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    stems: set[str] = set()
    for s in samples:
        flat = Path(s.name).name
        stem, suffix = Path(flat).stem, Path(flat).suffix
        if stem in stems:  # VOC is flat: disambiguate equal names from different folders
            stem = f"{stem}_{hashlib.sha256(s.name.encode()).hexdigest()[:8]}"
        stems.add(stem)
        (out / "JPEGImages" / f"{stem}{suffix}").write_bytes(s.data)
        objs = "".join(
            f"\t<object>\n\t\t<name>{_xml_escape(c)}</name>\n\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>0</truncated>\n\t\t<difficult>{int(crowd)}</difficult>\n\t\t<bndbox>\n"
            f"\t\t\t<xmin>{x1:.10g}</xmin>\n\t\t\t<ymin>{y1:.10g}</ymin>\n\t\t\t<xmax>{x2:.10g}</xmax>\n"
            f"\t\t\t<ymax>{y2:.10g}</ymax>\n\t\t</bndbox>\n\t</object>\n"
            for x1, y1, x2, y2, c, crowd in s.boxes
        )
        xml = (
            f"<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>{_xml_escape(stem + suffix)}</filename>\n"
            f"\t<size>\n\t\t<width>{s.width}</width>\n\t\t<height>{s.height}</height>\n"
            f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
        )
        (out / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
        by_split.setdefault(s.split, []).append(stem)
    for split, stems_ in by_split.items():
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{x}\n" for x in stems_))
    (out / "labels.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
