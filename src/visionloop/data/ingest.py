"""``visionloop import``: scan → decode and validate → store blobs → one transaction.

Images are checked in a thread pool (hashing, decoding and file I/O release the
GIL). Blobs land first (atomic writes, folders fsynced); the rows naming them are
committed together at the end, so an import is recorded whole or not at all and
a killed import leaves only unreferenced blobs, which ``fsck`` reports as garbage.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from visionloop.data import labels as labelset
from visionloop.data.archive import extract_archive, is_archive
from visionloop.data.formats.base import SourceItem, SourceScan
from visionloop.data.formats.detect import read_source
from visionloop.data.imaging import ImageProblem, check_image
from visionloop.data.validate import Box, Finding, check_size, finding, summarize, validate_boxes
from visionloop.errors import DataError, StrictImportError, UnknownClassesError, UsageError
from visionloop.store import schema
from visionloop.store.blobs import sha256_hex
from visionloop.types import ImageInfo
from visionloop.workspace import Workspace, check_class_name, utcnow

Progress = Callable[[int], None]


@dataclass
class _Checked:
    item: SourceItem
    oid: str | None = None
    info: ImageInfo | None = None
    boxes: list[Box] | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.oid is not None


@dataclass
class ImportResult:
    """What an import did; ``to_dict`` is its JSON report."""

    source: str
    format: str
    import_id: int | None
    scanned: int
    accepted: int
    new: int
    relabeled: int
    unchanged: int
    rejected: int
    unlabeled: int
    boxes: int
    boxes_per_class: dict[str, int]
    added_classes: list[str]
    findings: list[Finding]
    report_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "import_id": self.import_id,
            "images": {
                "scanned": self.scanned,
                "accepted": self.accepted,
                "new": self.new,
                "relabeled": self.relabeled,
                "unchanged": self.unchanged,
                "rejected": self.rejected,
                "unlabeled": self.unlabeled,
            },
            "boxes": self.boxes,
            "boxes_per_class": self.boxes_per_class,
            "added_classes": self.added_classes,
            "findings_summary": summarize(self.findings),
            "findings": [f.to_dict() for f in self.findings],
            "report_path": self.report_path,
        }


def _check(item: SourceItem, classes: list[str], tolerance: float, store: Any) -> _Checked:
    """Decode and validate one image; write its blob when ``store`` is given and it is accepted."""
    out = _Checked(item)
    try:
        data = item.image_path.read_bytes()
    except OSError as exc:
        out.findings.append(finding("image_file_missing", item.name, f"cannot be read ({exc.strerror})"))
        return out
    try:
        checked = check_image(data)
    except ImageProblem as p:
        out.findings.append(finding(p.rule, item.name, p.message))
        return out
    out.findings += [finding(rule, item.name, msg) for rule, msg in checked.warnings]
    info = checked.info
    mismatch = check_size(item.declared_size, (info.width, info.height), item.annotation)
    if mismatch:
        out.findings.append(mismatch)
        return out
    if item.boxes is not None:
        out.boxes, found = validate_boxes(
            item.boxes, info.width, info.height, classes, item.annotation, tolerance
        )
        out.findings += found
    out.info, out.oid = info, sha256_hex(checked.data)
    if store is not None:
        store.stage(checked.data, out.oid)
    return out


def _used_classes(scan: SourceScan) -> list[str]:
    used = dict.fromkeys(scan.classes)
    for item in scan.items:
        for b in item.boxes or ():
            if not b.cls.startswith("<"):
                used.setdefault(b.cls, None)
    return list(used)


def _resolve_classes(ws: Workspace, scan: SourceScan, add_classes: bool) -> tuple[list[str], list[str]]:
    known = ws.classes()
    counts = Counter(b.cls for i in scan.items for b in i.boxes or ())
    unknown = [c for c in _used_classes(scan) if c not in known and (counts[c] or not known)]
    if unknown and known and not add_classes:
        listed = ", ".join(f"{c!r} ({counts[c]} boxes)" for c in unknown)
        raise UnknownClassesError(
            f"the dataset uses classes the workspace does not know: {listed}",
            where=str(scan.root),
            fix="add them to `classes` in visionloop.toml, or re-run with --add-classes",
        )
    for name in unknown:
        try:
            check_class_name(name)
        except UsageError:
            raise DataError(
                f"the dataset uses the class name {name!r}, which is not a valid class name",
                where=str(scan.root),
                fix="rename the class in the dataset (1-200 printable characters, no surrounding spaces)",
            ) from None
    return known + unknown, unknown


def _run_checks(
    scan: SourceScan, classes: list[str], ws: Workspace, write: bool, progress: Progress | None
) -> list[_Checked]:
    tolerance = ws.settings.import_.box_tolerance_px
    store = ws.blobs if write else None
    results: list[_Checked] = []
    with ThreadPoolExecutor(max_workers=ws.settings.import_.workers) as pool:
        for res in pool.map(lambda it: _check(it, classes, tolerance, store), scan.items):
            results.append(res)
            if progress:
                progress(1)
    return results


def _record(conn: Connection, accepted: list[_Checked], import_id: int) -> tuple[int, int, int]:
    """Insert images, label revisions and items; return (new, relabeled, unchanged)."""
    now = utcnow()
    oids = [c.oid for c in accepted]
    have_images: set[str] = set()
    current: dict[str, tuple[int | None, str | None]] = {}
    for i in range(0, len(oids), 500):
        chunk = oids[i : i + 500]
        have_images |= set(conn.scalars(select(schema.images.c.oid).where(schema.images.c.oid.in_(chunk))))
        q = (
            select(schema.items.c.image_oid, schema.items.c.labels_id, schema.labels.c.oid)
            .select_from(
                schema.items.outerjoin(schema.labels, schema.items.c.labels_id == schema.labels.c.id)
            )
            .where(schema.items.c.image_oid.in_(chunk))
        )
        current.update({r[0]: (r[1], r[2]) for r in conn.execute(q)})
    new_images = [
        {
            "oid": c.oid,
            "width": c.info.width,
            "height": c.info.height,
            "format": c.info.format,
            "mode": c.info.mode,
            "orientation": c.info.orientation,
            "size_bytes": c.item.image_path.stat().st_size,
            "created_at": now,
        }
        for c in accepted
        if c.oid not in have_images and c.info
    ]
    if new_images:
        conn.execute(insert(schema.images), new_images)
    label_rows, new_items, relabel, unchanged = [], [], [], 0
    for c in accepted:
        assert c.oid is not None
        if c.oid in current:
            labels_id, labels_oid = current[c.oid]
            if c.boxes is None:
                unchanged += 1
                continue
            if labelset.canonical(c.boxes)[1] == labels_oid:
                unchanged += 1
                continue
            relabel.append(c.oid)
            label_rows.append(labelset.row(c.oid, c.boxes, now, parent_id=labels_id))
        else:
            new_items.append(c)
            if c.boxes is not None:
                label_rows.append(labelset.row(c.oid, c.boxes, now))
    ids: dict[str, int] = {}
    if label_rows:
        returned = conn.execute(
            insert(schema.labels).returning(
                schema.labels.c.id, schema.labels.c.image_oid, sort_by_parameter_order=True
            ),
            label_rows,
        )
        ids = {r[1]: r[0] for r in returned}
    if new_items:
        conn.execute(
            insert(schema.items),
            [
                {
                    "image_oid": c.oid,
                    "name": c.item.name,
                    "labels_id": ids.get(c.oid or ""),
                    "status": "unlabeled" if c.boxes is None else "labeled",
                    "source_split": c.item.split,
                    "import_id": import_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in new_items
            ],
        )
    if relabel:  # one executemany, not a statement per item
        conn.execute(
            update(schema.items)
            .where(schema.items.c.image_oid == bindparam("oid"))
            .values(labels_id=bindparam("lid"), status="labeled", updated_at=now),
            [{"oid": oid, "lid": ids[oid]} for oid in relabel],
        )
    return len(new_items), len(relabel), unchanged


def _dedupe(results: list[_Checked]) -> tuple[list[_Checked], list[Finding]]:
    first: dict[str, _Checked] = {}
    found = []
    for r in results:
        if not r.ok:
            continue
        assert r.oid is not None
        if r.oid in first:
            found.append(
                finding(
                    "duplicate_image",
                    r.item.name,
                    f"has the same content as {first[r.oid].item.name}; imported once",
                )
            )
        else:
            first[r.oid] = r
    return list(first.values()), found


def import_dataset(
    ws: Workspace,
    path: Path | str,
    *,
    fmt: str | None = None,
    add_classes: bool = False,
    strict: bool = False,
    progress: Progress | None = None,
    on_scan: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a dataset folder or archive into the workspace (see the module docstring)."""
    source = Path(path)
    if not source.exists():
        raise UsageError("the path to import does not exist", where=str(source), fix="check the path")
    staging: Path | None = None
    try:
        if source.is_file():
            if not is_archive(source):
                raise UsageError(
                    "a file to import must be a .zip or .tar[.gz] archive",
                    where=str(source),
                    fix="pass a dataset folder or an archive of one",
                )
            staging = Path(tempfile.mkdtemp(prefix="import-", dir=ws.tmp))
            root = extract_archive(
                source,
                staging,
                max_total_bytes=ws.settings.import_.max_archive_bytes,
                max_entries=ws.settings.import_.max_archive_entries,
            )
        else:
            root = source
        scan = read_source(root, fmt)
        classes, added = _resolve_classes(ws, scan, add_classes)
        if on_scan:
            on_scan(len(scan.items))
        results = _run_checks(scan, classes, ws, write=not strict, progress=progress)
        accepted, dup_findings = _dedupe(results)
        findings = scan.findings + [f for r in results for f in r.findings] + dup_findings
        if strict and findings:
            raise StrictImportError(
                f"--strict: the import has {len(findings)} finding(s), first: "
                f"{findings[0].file}: {findings[0].rule}: {findings[0].message}",
                where=str(source),
                fix="fix the data, or import without --strict",
            )
        if strict:
            for r in accepted:
                _check(r.item, classes, ws.settings.import_.box_tolerance_px, ws.blobs)
        boxes = Counter(b[4] for r in accepted for b in r.boxes or ())
        result = ImportResult(
            source=str(source),
            format=scan.format,
            import_id=None,
            scanned=len(scan.items),
            accepted=len(accepted),
            new=0,
            relabeled=0,
            unchanged=0,
            rejected=sum(1 for r in results if not r.ok),
            unlabeled=sum(1 for r in accepted if r.boxes is None),
            boxes=sum(boxes.values()),
            boxes_per_class={c: boxes[c] for c in classes if boxes[c]},
            added_classes=added,
            findings=findings,
        )
        report = json.dumps(result.to_dict(), indent=1).encode()
        report_oid = ws.blobs.stage(report)
        ws.blobs.publish_staged()  # every blob is durable before the rows naming them commit
        with ws.engine.begin() as conn:
            if added:
                n = len(classes) - len(added)
                conn.execute(
                    insert(schema.classes),
                    [{"id": n + i, "name": c, "created_at": utcnow()} for i, c in enumerate(added)],
                )
            inserted = conn.execute(
                insert(schema.imports).values(
                    source=str(source),
                    format=scan.format,
                    created_at=utcnow(),
                    counts={},
                    report_oid=report_oid,
                )
            ).inserted_primary_key
            assert inserted is not None
            import_id = int(inserted[0])
            result.new, result.relabeled, result.unchanged = _record(conn, accepted, import_id)
            result.import_id = import_id
            conn.execute(
                update(schema.imports)
                .where(schema.imports.c.id == import_id)
                .values(counts={k: v for k, v in result.to_dict()["images"].items()})
            )
        report_path = ws.reports / f"import-{result.import_id}.json"
        result.report_path = str(report_path)
        report_path.write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
        return result
    finally:
        ws.blobs.discard_staged()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
