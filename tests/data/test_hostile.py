"""Hostile inputs to ``import_dataset``: each is refused with a clear message, nothing is written
outside the workspace, and the workspace's items, images, labels and blobs stay as they were."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from _helpers import jpeg, write
from visionloop.data.ingest import ImportResult, import_dataset
from visionloop.errors import (
    DataError,
    StrictImportError,
    UnknownClassesError,
    UnsafeArchiveError,
    VisionloopError,
)
from visionloop.store import schema
from visionloop.workspace import Workspace

W, H = 40, 30
PASSWD = Path("/etc/passwd")

# --- builders ------------------------------------------------------------------------------------


def _jpeg(seed: int = 0, size: tuple[int, int] = (W, H)) -> bytes:
    return jpeg(seed, size)


_write = write


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def _yolo(root: Path, names: list[str], labels: dict[str, str]) -> Path:
    _write(root / "data.yaml", f"names: {json.dumps(names)}\n")
    for i, (stem, text) in enumerate(labels.items()):
        _write(root / "images" / f"{stem}.jpg", _jpeg(i + 1))
        _write(root / "labels" / f"{stem}.txt", text)
    return root


# --- workspace state -----------------------------------------------------------------------------

State = tuple[dict[str, set[tuple[Any, ...]]], set[str]]


def _state(ws: Workspace, tables: tuple[Any, ...] = (schema.items, schema.images, schema.labels)) -> State:
    with ws.engine.connect() as conn:
        rows = {t.name: {tuple(r) for r in conn.execute(select(t))} for t in tables}
    return rows, set(ws.blobs)


def _all_tables_state(ws: Workspace) -> State:
    return _state(ws, (schema.items, schema.images, schema.labels, schema.imports, schema.classes))


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _report_oid(ws: Workspace, result: ImportResult) -> str:
    with ws.engine.connect() as conn:
        oid = conn.scalar(select(schema.imports.c.report_oid).where(schema.imports.c.id == result.import_id))
    assert oid is not None
    return str(oid)


def _assert_nothing_imported(ws: Workspace, before: State, result: ImportResult) -> None:
    """The import ran (it is recorded, with its report) but added no item, image, label or image blob."""
    rows, blobs = _state(ws)
    assert rows == before[0]
    assert blobs - before[1] <= {_report_oid(ws, result)}
    assert (result.accepted, result.new, result.boxes) == (0, 0, 0)


def _rules(result: ImportResult) -> list[tuple[str, str]]:
    return sorted((f.rule, f.file) for f in result.findings)


def _message(result: ImportResult, rule: str) -> str:
    (msg,) = [f.message for f in result.findings if f.rule == rule]
    return msg


def _everything_in(ws: Workspace) -> bytes:
    """Every byte the workspace holds (database, blobs, reports)."""
    return b"".join(p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file())


# --- archives ------------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    assert zipfile.ZipFile(path).namelist() == list(entries)  # names were stored verbatim
    return path


@pytest.mark.parametrize(
    "evil",
    ["../evil.txt", "../../../evil.txt", "images/../../evil.txt", "/tmp/visionloop-evil-{token}.txt"],
    ids=["parent", "grandparents", "nested-parent", "absolute"],
)
def test_unsafe_zip_entry_is_refused(ws: Workspace, tmp_path: Path, evil: str) -> None:
    evil = evil.format(token=secrets.token_hex(6))
    archive = _zip(
        tmp_path / "ds.zip",
        {"ds/images/a.jpg": _jpeg(1), evil: b"pwned", "ds/images/b.jpg": _jpeg(2)},
    )
    before, files = _all_tables_state(ws), _files(tmp_path)
    siblings = set(tmp_path.parent.iterdir())
    with pytest.raises(UnsafeArchiveError) as caught:
        import_dataset(ws, archive)
    msg = str(caught.value)
    assert f"archive entry {evil!r}" in msg
    if evil.startswith("/"):
        assert "has an absolute path" in msg
    else:
        assert "would be written outside the extraction directory" in msg
    assert "Fix: re-create the archive with relative paths only" in msg
    assert caught.value.exit_code == 5
    assert _all_tables_state(ws) == before
    assert _files(tmp_path) == files  # not even an emptied staging folder is left
    assert set(tmp_path.parent.iterdir()) == siblings
    for where in (ws.tmp, ws.root, tmp_path, tmp_path.parent):
        assert not (where / "evil.txt").exists()
    if evil.startswith("/"):
        assert not Path(evil).exists()


# --- XML attacks ---------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotation [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n<annotation><filename>a.jpg</filename><object><name>&lol9;</name><bndbox><xmin>1</xmin>"
    "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>\n"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    "<annotation><filename>a.jpg</filename><object><name>&x;</name><bndbox><xmin>1</xmin>"
    "<ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>\n"
)


@pytest.mark.parametrize("with_image", [False, True], ids=["xml-only", "with-image"])
@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_unsafe_voc_xml(ws: Workspace, tmp_path: Path, xml: str, with_image: bool) -> None:
    root = tmp_path / "voc"
    _write(root / "Annotations" / "a.xml", xml)
    if with_image:
        _write(root / "JPEGImages" / "a.jpg", _jpeg())
    else:
        (root / "JPEGImages").mkdir()
    before, classes = _state(ws), ws.classes()
    start = time.perf_counter()
    result = import_dataset(ws, root)
    assert time.perf_counter() - start < 5  # entities were never expanded
    assert result.format == "voc"
    assert ("unsafe_annotation", "Annotations/a.xml") in _rules(result)
    assert "refused for safety" in _message(result, "unsafe_annotation")
    assert ws.classes() == classes
    assert "lollollol" not in json.dumps(result.to_dict())
    if PASSWD.is_file():
        first_line = PASSWD.read_text().splitlines()[0].encode()
        assert first_line not in _everything_in(ws)
    _assert_nothing_imported(ws, before, result)


# --- image attacks -------------------------------------------------------------------------------


def _truncated_jpeg() -> bytes:
    import random

    im = Image.frombytes("RGB", (128, 128), random.Random(3).randbytes(128 * 128 * 3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data", "rule", "fragment"),
    [
        ("bomb.png", _png_bomb(), "decompression_bomb", "too many pixels"),
        ("cut.jpg", _truncated_jpeg(), "truncated_image", "truncated JPEG"),
        ("noise.jpg", bytes(range(256)) * 8, "undecodable_image", "not an image"),
    ],
    ids=["decompression-bomb", "truncated-jpeg", "undecodable"],
)
def test_bad_image_alone_imports_nothing(
    ws: Workspace, tmp_path: Path, name: str, data: bytes, rule: str, fragment: str
) -> None:
    root = tmp_path / "imgs"
    _write(root / name, data)
    before = _state(ws)
    start = time.perf_counter()
    result = import_dataset(ws, root)
    assert time.perf_counter() - start < 5
    assert result.format == "images"
    assert _rules(result) == [(rule, name)]
    assert fragment in _message(result, rule)
    assert (result.scanned, result.rejected) == (1, 1)
    _assert_nothing_imported(ws, before, result)
    report = json.loads(Path(result.report_path or "").read_text())
    assert report["findings_summary"]["error"] == {rule: 1}


# --- hostile COCO --------------------------------------------------------------------------------


def test_hostile_coco(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    _write(root / "a.jpg", _jpeg())
    images = [
        {"id": 1, "file_name": "a.jpg", "width": W, "height": H},
        {"id": 2, "file_name": "../../etc/passwd", "width": W, "height": H},
        {"id": 3, "file_name": "/etc/passwd"},
        {"id": 4, "file_name": "..\\..\\etc\\passwd"},
        {"id": 5, "file_name": "C:/Windows/win.ini"},
    ]
    anns = [
        {"image_id": 1, "category_id": 1, "bbox": [float("nan"), 2, 3, 4]},
        {"image_id": 1, "category_id": 1, "bbox": [5, 5, -3, 4]},
        {"image_id": 1, "category_id": 1, "bbox": [30, 20, 50, 50]},
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, float("inf"), 4]},
        {"image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},  # the one good box
        {"image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]},
    ]
    text = json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]})
    assert "NaN" in text and "Infinity" in text  # Python's json writes (and reads) these
    _write(root / "annotations.json", text)
    before_blobs, files = set(ws.blobs), _files(tmp_path) - _files(ws.root)
    result = import_dataset(ws, root)
    assert result.format == "coco"
    assert _rules(result) == [
        ("box_out_of_bounds", "annotations.json"),
        ("degenerate_box", "annotations.json"),
        ("invalid_box", "annotations.json"),
        ("invalid_box", "annotations.json"),
        ("unsafe_path", "annotations.json"),
        ("unsafe_path", "annotations.json"),
        ("unsafe_path", "annotations.json"),
        ("unsafe_path", "annotations.json"),
    ]
    unsafe = [f.message for f in result.findings if f.rule == "unsafe_path"]
    assert any("'../../etc/passwd'" in m and "outside the dataset" in m for m in unsafe)
    assert any("'/etc/passwd'" in m for m in unsafe)
    # a.jpg is imported with its one good box (dropped boxes do not reject the image)
    assert (result.accepted, result.new, result.boxes, result.rejected) == (1, 1, 1, 0)
    rows, blobs = _state(ws)
    assert [r[1] for r in rows["items"]] == ["a.jpg"]
    ((labels_text,),) = {(r[3],) for r in rows["labels"]}
    assert json.loads(labels_text) == [{"box": [2.0, 2.0, 12.0, 12.0], "class": "cell"}]
    assert len(blobs - before_blobs) == 2  # a.jpg and the report
    if PASSWD.is_file():
        assert PASSWD.read_text().splitlines()[0].encode() not in _everything_in(ws)
    assert _files(tmp_path) - _files(ws.root) == files


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_image_beside_the_dataset_is_not_used(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "ds"
    if fmt == "coco":
        _write(tmp_path / "outside.jpg", _jpeg(9))
        doc = {"images": [{"id": 1, "file_name": "outside.jpg"}], "annotations": [], "categories": []}
        _write(root / "instances.json", json.dumps(doc))
        expected = "image_file_missing"
    else:
        _write(tmp_path / "JPEGImages" / "outside.jpg", _jpeg(9))
        _write(root / "outside.xml", "<annotation><filename>outside.jpg</filename></annotation>")
        expected = "annotation_without_image"
    before = _state(ws)
    result = import_dataset(ws, root, fmt=fmt)
    assert [f.rule for f in result.findings] == [expected]
    _assert_nothing_imported(ws, before, result)


# --- classes -------------------------------------------------------------------------------------


def test_unknown_classes_are_refused_then_added_on_request(ws: Workspace, tmp_path: Path) -> None:
    ws.add_classes(["cell"])
    root = _yolo(
        tmp_path / "ds",
        ["cell", "dog", "unused"],
        {"a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n", "b": "1 0.5 0.5 0.2 0.2\n"},
    )
    before, files = _all_tables_state(ws), _files(ws.root)
    with pytest.raises(UnknownClassesError) as caught:
        import_dataset(ws, root)
    msg = str(caught.value)
    assert "the dataset uses classes the workspace does not know: 'dog' (2 boxes)" in msg
    assert "'unused'" not in msg and "'cell'" not in msg
    assert "--add-classes" in msg
    assert isinstance(caught.value, DataError) and caught.value.exit_code == 5
    assert _all_tables_state(ws) == before
    assert _files(ws.root) == files
    assert ws.classes() == ["cell"]

    result = import_dataset(ws, root, add_classes=True)
    assert result.added_classes == ["dog"]
    assert ws.classes() == ["cell", "dog"]
    assert result.boxes_per_class == {"cell": 1, "dog": 2}
    assert (result.accepted, result.new) == (2, 2)
    assert result.findings == []


def test_unknown_classes_into_an_empty_workspace_are_added(ws: Workspace, tmp_path: Path) -> None:
    root = _yolo(tmp_path / "ds", ["cell", "dog"], {"a": "0 0.5 0.5 0.2 0.2\n"})
    result = import_dataset(ws, root)
    assert ws.classes() == ["cell", "dog"]  # the dataset's declared list, in its order
    assert result.added_classes == ["cell", "dog"]


# --- strict --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "extra", "rule"),
    [
        ({"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 1.04 0.5\n"}, {}, "box_clipped"),
        ({"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0 0.5\n"}, {}, "degenerate_box"),
        ({"a": "0 0.5 0.5 0.2 0.2\n"}, {"images/c.jpg": _truncated_jpeg()}, "truncated_image"),
        (
            {"a": "0 0.5 0.5 0.2 0.2\n"},
            {"labels/orphan.txt": "0 0.5 0.5 0.1 0.1\n"},
            "annotation_without_image",
        ),
        ({"a": "0 0.5 0.5 0.2 0.2\n"}, {"images/a-copy.jpg": _jpeg(1)}, "duplicate_image"),
    ],
    ids=["warning", "dropped-box", "error-image", "scan-finding", "duplicate"],
)
def test_strict_refuses_any_finding(
    ws: Workspace, tmp_path: Path, labels: dict[str, str], extra: dict[str, bytes | str], rule: str
) -> None:
    root = _yolo(tmp_path / "ds", ["cell"], labels)
    for name, data in extra.items():
        _write(root / name, data)
    before, files = _all_tables_state(ws), _files(ws.root)
    with pytest.raises(StrictImportError) as caught:
        import_dataset(ws, root, strict=True)
    msg = str(caught.value)
    assert "--strict: the import has 1 finding(s), first:" in msg
    assert f": {rule}: " in msg
    assert "import without --strict" in msg
    assert _all_tables_state(ws) == before  # no rows, no classes, no import record
    assert _files(ws.root) == files  # no blobs, no report, no temp files


def test_strict_without_findings_imports(ws: Workspace, tmp_path: Path) -> None:
    root = _yolo(tmp_path / "ds", ["cell"], {"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.25 0.25 0.1 0.1\n"})
    before_blobs = set(ws.blobs)
    result = import_dataset(ws, root, strict=True)
    assert result.findings == []
    assert (result.accepted, result.new, result.boxes) == (2, 2, 2)
    rows, blobs = _state(ws)
    assert len(rows["images"]) == 2
    image_oids = {r[0] for r in rows["images"]}
    assert image_oids <= blobs  # strict writes the image blobs after the checks pass
    assert blobs - before_blobs == image_oids | {_report_oid(ws, result)}


def test_invalid_class_name_is_never_added(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    _write(root / "JPEGImages" / "a.jpg", _jpeg())
    obj = "<object><name>{}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
    xml = f"<annotation><filename>a.jpg</filename>{obj.format('')}{obj.format('cell')}</annotation>"
    _write(root / "Annotations" / "a.xml", xml)
    with contextlib.suppress(VisionloopError):  # refusing the import is fine; adding '' is not
        import_dataset(ws, root)
    assert "" not in ws.classes()
