"""Tests of the dataset format readers, detection and writers on tiny datasets built in tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _helpers import jpeg, write
from visionloop.data.formats.base import ExportSample, SourceItem, SourceScan
from visionloop.data.formats.coco import read_coco, write_coco
from visionloop.data.formats.detect import detect_format, read_source
from visionloop.data.formats.images import read_images
from visionloop.data.formats.voc import read_voc, write_voc
from visionloop.data.formats.yolo import read_yolo, write_yolo
from visionloop.data.validate import RULES, RawBox
from visionloop.errors import FormatDetectionError, UsageError

W, H = 40, 30

# --- builders ------------------------------------------------------------------------------------


def _jpeg(seed: int = 0, size: tuple[int, int] = (W, H)) -> bytes:
    return jpeg(seed, size)


_write = write


def _by_name(scan: SourceScan) -> dict[str, SourceItem]:
    names = [i.name for i in scan.items]
    assert len(names) == len(set(names))
    return {i.name: i for i in scan.items}


def _rules(scan: SourceScan) -> list[tuple[str, str]]:
    for f in scan.findings:
        assert f.severity == RULES[f.rule][0]
    return sorted((f.rule, f.file) for f in scan.findings)


def _message(scan: SourceScan, rule: str) -> str:
    (msg,) = [f.message for f in scan.findings if f.rule == rule]
    return msg


CATEGORIES = [{"id": 1, "name": "cell"}, {"id": 2, "name": "platelet"}]


def _coco_doc(images: list[dict[str, Any]], anns: list[dict[str, Any]]) -> str:
    return json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES})


def make_coco(root: Path) -> Path:
    _write(root / "images" / "train" / "a.jpg", _jpeg(1))
    _write(root / "images" / "train" / "b.jpg", _jpeg(2))
    _write(root / "images" / "val" / "c.jpg", _jpeg(3))
    train = _coco_doc(
        [
            {"id": 1, "file_name": "a.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "b.jpg", "width": W, "height": H},  # no annotations
        ],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [1.5, 2.5, 4, 6], "iscrowd": 1},
        ],
    )
    val = _coco_doc(
        [{"id": 1, "file_name": "c.jpg", "width": W, "height": H}],
        [{"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 40, 30]}],
    )
    _write(root / "annotations" / "instances_train.json", train)
    _write(root / "annotations" / "instances_val.json", val)
    return root


def make_yolo(root: Path, names: Any = ("cell", "platelet"), names_file: str = "data.yaml") -> Path:
    if names_file == "data.yaml":
        names_yaml = json.dumps(names if isinstance(names, dict) else list(names))  # JSON is YAML
        _write(root / "data.yaml", f"path: .\ntrain: images/train\nval: images/val\nnames: {names_yaml}\n")
    else:
        _write(root / names_file, "".join(f"{n}\n" for n in names))
    _write(root / "images" / "train" / "a.jpg", _jpeg(1))
    _write(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.5 0.2\n\n1 0.25 0.75 0.1 0.1\n")
    _write(root / "images" / "train" / "b.jpg", _jpeg(2))
    _write(root / "labels" / "train" / "b.txt", "")  # an empty label file: a background image
    _write(root / "images" / "val" / "c.jpg", _jpeg(3))  # no label file at all
    return root


def _voc_xml(filename: str, objects: list[tuple[str, Any, Any, Any, Any, int]], size: Any = (W, H)) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for n, x1, y1, x2, y2, d in objects
    )
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>"
    )


def make_voc(root: Path) -> Path:
    _write(root / "JPEGImages" / "a.jpg", _jpeg(1))
    _write(root / "JPEGImages" / "b.jpg", _jpeg(2))
    _write(root / "JPEGImages" / "c.jpg", _jpeg(3))  # no XML: unlabeled
    _write(
        root / "Annotations" / "a.xml",
        _voc_xml("a.jpg", [("cell", 2, 3, 12, 8, 0), ("platelet", "1.5", "2.5", "5.5", "8.5", 1)]),
    )
    _write(root / "Annotations" / "b.xml", _voc_xml("b.jpg", []))
    _write(root / "ImageSets" / "Main" / "train.txt", "a\nc\n")
    _write(root / "ImageSets" / "Main" / "val.txt", "b\n")
    return root


def make_images(root: Path) -> Path:
    _write(root / "one.jpg", _jpeg(1))
    _write(root / "sub" / "two.png", _jpeg(2))
    _write(root / "valid" / "three.jpg", _jpeg(3))
    _write(root / "README.md", "not an image")
    return root


# --- COCO ----------------------------------------------------------------------------------------


def test_coco_reads_boxes_crowd_splits_and_empty_images(tmp_path: Path) -> None:
    scan = read_coco(make_coco(tmp_path / "ds"))
    assert scan.format == "coco"
    assert scan.classes == ["cell", "platelet"]
    assert scan.findings == []
    items = _by_name(scan)
    assert set(items) == {"images/train/a.jpg", "images/train/b.jpg", "images/val/c.jpg"}
    a, b, c = items["images/train/a.jpg"], items["images/train/b.jpg"], items["images/val/c.jpg"]
    assert a.boxes == [RawBox(2, 3, 12.0, 8.0, "cell", False), RawBox(1.5, 2.5, 5.5, 8.5, "platelet", True)]
    assert b.boxes == []  # listed without annotations: labeled, zero boxes (not unlabeled)
    assert c.boxes == [RawBox(0, 0, 40.0, 30.0, "platelet", False)]
    assert (a.split, b.split, c.split) == ("train", "train", "val")
    assert a.declared_size == (W, H)
    assert a.annotation == "annotations/instances_train.json"
    assert a.image_path == tmp_path / "ds" / "images" / "train" / "a.jpg"
    assert scan.has_splits


def test_coco_single_file_beside_images_has_no_split(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    _write(
        root / "labels.json",
        _coco_doc(
            [{"id": 7, "file_name": "a.jpg"}], [{"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4]}]
        ),
    )
    scan = read_coco(root)
    (item,) = scan.items
    assert (item.name, item.split, item.declared_size) == ("a.jpg", None, None)
    assert item.boxes == [RawBox(1, 2, 4.0, 6.0, "cell")]
    assert not scan.has_splits


def test_coco_annotation_without_image(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    anns = [
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"image_id": 99, "category_id": 2, "bbox": [5, 6, 3, 4]},
    ]
    _write(root / "coco.json", _coco_doc([{"id": 1, "file_name": "a.jpg"}], anns))
    scan = read_coco(root)
    assert [i.name for i in scan.items] == ["a.jpg"]
    assert len(scan.items[0].boxes or []) == 1
    assert _rules(scan) == [("annotation_without_image", "coco.json")]
    msg = _message(scan, "annotation_without_image")
    assert "2 annotation(s)" in msg and "image id 99" in msg


def test_coco_image_file_missing(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "gone.jpg"}]
    _write(root / "coco.json", _coco_doc(images, [{"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]}]))
    scan = read_coco(root)
    assert [i.name for i in scan.items] == ["a.jpg"]
    assert _rules(scan) == [("image_file_missing", "coco.json")]
    assert "'gone.jpg'" in _message(scan, "image_file_missing")
    assert "image 2" in _message(scan, "image_file_missing")


@pytest.mark.parametrize(
    "text",
    [
        '{"images": [{"id": 1, "file_name": "a.jpg"}',  # cut short
        '{"images": 1, }',
        '{"annotations": [], "categories": []}',  # no images key
        '{"images": [], "categories": [{"id": "x", "name": "cell"}]}',
        '["images"]',
    ],
    ids=["truncated", "trailing-comma", "no-images", "bad-category-id", "a-list"],
)
def test_coco_malformed_json(tmp_path: Path, text: str) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    _write(root / "annotations" / "bad.json", text)
    scan = read_coco(root)
    assert scan.items == []
    assert _rules(scan) == [("invalid_annotation", "annotations/bad.json")]
    assert "is not a COCO detection file" in _message(scan, "invalid_annotation")


def test_coco_malformed_entries(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    images: list[dict[str, Any]] = [{"id": 1, "file_name": "a.jpg"}, {"file_name": "no-id.jpg"}]
    anns: list[dict[str, Any]] = [
        {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},  # three numbers
        {"image_id": 1, "category_id": 1},  # no bbox
        {"image_id": 1, "category_id": 1, "bbox": ["a", 2, 3, 4]},  # text: kept as an invalid box
        {"image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4]},  # unknown category id
    ]
    _write(root / "coco.json", _coco_doc(images, anns))
    scan = read_coco(root)
    assert _rules(scan) == [
        ("invalid_annotation", "coco.json"),
        ("invalid_box", "coco.json"),
        ("invalid_box", "coco.json"),
    ]
    (item,) = scan.items
    assert item.boxes is not None
    assert [b.cls for b in item.boxes] == ["cell", "<category id 5>"]
    assert item.boxes[0].x1 == "a"


def test_coco_unhashable_image_id_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "a.jpg", _jpeg())
    anns = [{"image_id": [1], "category_id": 1, "bbox": [1, 2, 3, 4]}]
    _write(root / "coco.json", _coco_doc([{"id": 1, "file_name": "a.jpg"}], anns))
    scan = read_coco(root)
    assert {f.rule for f in scan.findings} & {"invalid_box", "invalid_annotation"}


# --- YOLO ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "names_file"),
    [
        (["cell", "platelet"], "data.yaml"),
        ({0: "cell", 1: "platelet"}, "data.yaml"),
        ({1: "platelet", 0: "cell"}, "data.yaml"),  # dict order does not matter, the index does
        (["cell", "platelet"], "classes.txt"),
        (["cell", "platelet"], "obj.names"),
    ],
    ids=["yaml-list", "yaml-dict", "yaml-dict-unordered", "classes.txt", "obj.names"],
)
def test_yolo_names_splits_and_boxes(tmp_path: Path, names: Any, names_file: str) -> None:
    scan = read_yolo(make_yolo(tmp_path / "ds", names, names_file))
    assert scan.format == "yolo"
    assert scan.classes == ["cell", "platelet"]
    assert scan.findings == []
    items = _by_name(scan)
    assert set(items) == {"images/train/a.jpg", "images/train/b.jpg", "images/val/c.jpg"}
    a = items["images/train/a.jpg"]
    assert a.boxes is not None
    assert [(b.cls, b.normalized) for b in a.boxes] == [("cell", True), ("platelet", True)]
    assert [b.x1 for b in a.boxes] == pytest.approx([0.25, 0.2])
    assert [(b.y1, b.x2, b.y2) for b in a.boxes] == [
        pytest.approx((0.4, 0.75, 0.6)),
        pytest.approx((0.7, 0.3, 0.8)),
    ]
    assert a.annotation == "labels/train/a.txt"
    assert a.declared_size is None
    assert items["images/train/b.jpg"].boxes == []
    assert items["images/val/c.jpg"].boxes == []  # no label file: a background image, not unlabeled
    assert {n: i.split for n, i in items.items()} == {
        "images/train/a.jpg": "train",
        "images/train/b.jpg": "train",
        "images/val/c.jpg": "val",
    }


def test_yolo_label_beside_image_and_split_aliases(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "classes.txt", "cell\n")
    _write(root / "valid" / "x.jpg", _jpeg())
    _write(root / "valid" / "x.txt", "0 0.5 0.5 1 1\n")
    _write(root / "training" / "y.jpg", _jpeg(2))
    scan = read_yolo(root)
    items = _by_name(scan)
    assert items["valid/x.jpg"].split == "val"
    assert items["training/y.jpg"].split == "train"
    assert items["valid/x.jpg"].annotation == "valid/x.txt"
    assert items["valid/x.jpg"].boxes == [RawBox(0.0, 0.0, 1.0, 1.0, "cell", normalized=True)]
    assert scan.findings == []


def test_yolo_label_without_image(tmp_path: Path) -> None:
    root = make_yolo(tmp_path / "ds")
    _write(root / "labels" / "train" / "orphan.txt", "0 0.5 0.5 0.1 0.1\n")
    scan = read_yolo(root)
    assert _rules(scan) == [("annotation_without_image", "labels/train/orphan.txt")]
    assert "label file whose image is not in the dataset" in _message(scan, "annotation_without_image")
    assert "labels/train/orphan.txt" not in {i.annotation for i in scan.items}


def test_yolo_polygon_becomes_its_bounding_box(tmp_path: Path) -> None:
    root = make_yolo(tmp_path / "ds")
    _write(root / "labels" / "train" / "a.txt", "1 0.1 0.2 0.6 0.15 0.5 0.7 0.2 0.9\n")
    scan = read_yolo(root)
    assert scan.findings == []
    (box,) = _by_name(scan)["images/train/a.jpg"].boxes or []
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((0.1, 0.15, 0.6, 0.9))
    assert (box.cls, box.normalized) == ("platelet", True)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("cell 0.5 0.5 0.1 0.1", "line 2 is not `class cx cy w h`"),
        ("0 0.5 0.5 x 0.1", "line 2 is not `class cx cy w h`"),
        ("0.0 0.5 0.5 0.1 0.1", "line 2 is not `class cx cy w h`"),
        ("0 0.5 0.5 0.1", "line 2 has 3 numbers; expected 4"),
        ("0 0.5 0.5 0.1 0.1 0.2", "line 2 has 5 numbers; expected 4"),
        ("0", "line 2 has 0 numbers; expected 4"),
    ],
    ids=["class-name", "text-number", "float-class", "three", "five", "class-only"],
)
def test_yolo_bad_line(tmp_path: Path, line: str, fragment: str) -> None:
    root = make_yolo(tmp_path / "ds")
    _write(root / "labels" / "train" / "a.txt", f"0 0.5 0.5 0.2 0.2\n{line}\n1 0.5 0.5 0.2 0.2\n")
    scan = read_yolo(root)
    assert _rules(scan) == [("invalid_box", "labels/train/a.txt")]
    assert fragment in _message(scan, "invalid_box")
    boxes = _by_name(scan)["images/train/a.jpg"].boxes or []
    assert [b.cls for b in boxes] == ["cell", "platelet"]  # the other lines still count


def test_yolo_class_index_out_of_range_and_nan(tmp_path: Path) -> None:
    root = make_yolo(tmp_path / "ds")
    _write(root / "labels" / "train" / "a.txt", "5 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n")
    scan = read_yolo(root)
    assert scan.findings == []  # left to validation: unknown_class / invalid_box
    boxes = _by_name(scan)["images/train/a.jpg"].boxes or []
    assert boxes[0].cls == "<class index 5>"
    assert boxes[1].cls == "cell"


def test_yolo_unreadable_data_yaml(tmp_path: Path) -> None:
    root = make_yolo(tmp_path / "ds")
    _write(root / "data.yaml", "train: images/train\n")  # no names
    scan = read_yolo(root)
    assert _rules(scan) == [("invalid_annotation", "data.yaml")]
    assert "no readable `names` list" in _message(scan, "invalid_annotation")
    assert scan.classes == []


# --- VOC -----------------------------------------------------------------------------------------


def test_voc_boxes_difficult_splits_and_unlabeled(tmp_path: Path) -> None:
    scan = read_voc(make_voc(tmp_path / "ds"))
    assert scan.format == "voc"
    assert scan.findings == []
    assert scan.classes == ["cell", "platelet"]
    items = _by_name(scan)
    assert set(items) == {"JPEGImages/a.jpg", "JPEGImages/b.jpg", "JPEGImages/c.jpg"}
    a, b, c = items["JPEGImages/a.jpg"], items["JPEGImages/b.jpg"], items["JPEGImages/c.jpg"]
    assert a.boxes == [
        RawBox("2", "3", "12", "8", "cell", crowd=False),
        RawBox("1.5", "2.5", "5.5", "8.5", "platelet", crowd=True),
    ]
    assert a.annotation == "Annotations/a.xml"
    assert a.declared_size == (W, H)
    assert b.boxes == []  # an XML without objects: labeled, zero boxes
    assert c.boxes is None  # no XML at all: unlabeled
    assert (a.split, b.split, c.split) == ("train", "val", "train")


def test_voc_xml_without_image(tmp_path: Path) -> None:
    root = make_voc(tmp_path / "ds")
    _write(root / "Annotations" / "d.xml", _voc_xml("d.jpg", [("cell", 1, 1, 5, 5, 0)]))
    scan = read_voc(root)
    assert _rules(scan) == [("annotation_without_image", "Annotations/d.xml")]
    assert "'d.jpg'" in _message(scan, "annotation_without_image")
    assert len(scan.items) == 3


@pytest.mark.parametrize(
    "text",
    ["<annotation><filename>a.jpg</filename>", "not xml at all", "<annotation><a></b></annotation>"],
    ids=["unclosed", "text", "mismatched"],
)
def test_voc_malformed_xml(tmp_path: Path, text: str) -> None:
    root = make_voc(tmp_path / "ds")
    _write(root / "Annotations" / "bad.xml", text)
    scan = read_voc(root)
    assert _rules(scan) == [("invalid_annotation", "Annotations/bad.xml")]
    assert "is not well-formed XML" in _message(scan, "invalid_annotation")


def test_voc_missing_coordinates_are_left_to_validation(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "JPEGImages" / "a.jpg", _jpeg())
    xml = "<annotation><filename>a.jpg</filename><object><name>cell</name></object></annotation>"
    _write(root / "Annotations" / "a.xml", xml)
    scan = read_voc(root)
    (item,) = scan.items
    assert item.boxes == [RawBox("nan", "nan", "nan", "nan", "cell")]
    assert item.declared_size == (0, 0)  # unknown: check_size ignores it


def test_voc_infinite_size_is_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write(root / "JPEGImages" / "a.jpg", _jpeg())
    _write(root / "Annotations" / "a.xml", _voc_xml("a.jpg", [], size=("inf", H)))
    scan = read_voc(root)
    assert [i.declared_size for i in scan.items] in ([None], [(0, H)])


# --- plain images --------------------------------------------------------------------------------


def test_plain_folder_is_unlabeled(tmp_path: Path) -> None:
    scan = read_images(make_images(tmp_path / "ds"))
    assert scan.format == "images"
    assert scan.findings == [] and scan.classes == []
    items = _by_name(scan)
    assert set(items) == {"one.jpg", "sub/two.png", "valid/three.jpg"}
    assert all(i.boxes is None for i in items.values())
    assert {n: i.split for n, i in items.items()} == {
        "one.jpg": None,
        "sub/two.png": None,
        "valid/three.jpg": "val",
    }


def test_hidden_and_macos_junk_are_skipped(tmp_path: Path) -> None:
    root = make_images(tmp_path / "ds")
    _write(root / ".hidden" / "x.jpg", _jpeg())
    _write(root / "__MACOSX" / "._one.jpg", b"junk")
    _write(root / ".DS_Store", b"junk")
    assert {i.name for i in read_images(root).items} == {"one.jpg", "sub/two.png", "valid/three.jpg"}


# --- detection -----------------------------------------------------------------------------------


def _voc_flat(root: Path) -> Path:
    _write(root / "a.jpg", _jpeg())
    _write(root / "a.xml", _voc_xml("a.jpg", [("cell", 1, 1, 5, 5, 0)]))
    return root


def _yolo_labels_only(root: Path) -> Path:
    _write(root / "images" / "a.jpg", _jpeg())
    _write(root / "labels" / "a.txt", "0 0.5 0.5 0.5 0.5\n")
    return root


BUILDERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "coco": (make_coco, "coco"),
    "voc": (make_voc, "voc"),
    "voc-flat": (_voc_flat, "voc"),
    "yolo-data.yaml": (make_yolo, "yolo"),
    "yolo-classes.txt": (lambda r: make_yolo(r, names_file="classes.txt"), "yolo"),
    "yolo-labels-only": (_yolo_labels_only, "yolo"),
    "images": (make_images, "images"),
}


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_detect_format(tmp_path: Path, kind: str) -> None:
    build, expected = BUILDERS[kind]
    root = build(tmp_path / "ds")
    assert detect_format(root) == expected
    scan = read_source(root)
    assert scan.format == expected
    assert scan.items


@pytest.mark.parametrize("content", [{}, {"README.md": "hi", "notes.txt": "x"}], ids=["empty", "no-images"])
def test_detect_format_refuses_a_folder_without_data(tmp_path: Path, content: dict[str, str]) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    for name, text in content.items():
        _write(root / name, text)
    with pytest.raises(FormatDetectionError) as caught:
        detect_format(root)
    msg = str(caught.value)
    assert "cannot tell the dataset's format" in msg
    assert str(root) in msg
    assert "--format voc|coco|yolo|images" in msg
    with pytest.raises(FormatDetectionError):
        read_source(root)


def test_read_source_with_explicit_format(tmp_path: Path) -> None:
    root = make_yolo(tmp_path / "ds")
    scan = read_source(root, "images")
    assert scan.format == "images"
    assert all(i.boxes is None for i in scan.items)
    with pytest.raises(UsageError, match="unknown format 'kitti'"):
        read_source(root, "kitti")


# --- writers round-trip --------------------------------------------------------------------------

ROUND_CLASSES = ["cell", "platelet"]
ROUND_SAMPLES = [
    ExportSample(
        "a.jpg",
        _jpeg(1),
        W,
        H,
        [(1.25, 2.5, 10.75, 20.0, "cell", False), (3.0, 4.0, 5.5, 6.25, "platelet", True)],
        "train",
    ),
    ExportSample("b.jpg", _jpeg(2), W, H, [], "val"),
    ExportSample("c.jpg", _jpeg(3), W, H, [(0.0, 0.0, 40.0, 30.0, "platelet", False)], "test"),
    ExportSample("d.jpg", _jpeg(4), W, H, [(7.33, 8.67, 39.99, 29.01, "cell", False)], "train"),
]
FORMATS = {"coco": (write_coco, read_coco), "yolo": (write_yolo, read_yolo), "voc": (write_voc, read_voc)}


def _pixels(box: RawBox, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in (box.x1, box.y1, box.x2, box.y2))
    if box.normalized:
        return x1 * width, y1 * height, x2 * width, y2 * height
    return x1, y1, x2, y2


def _round_trip(tmp_path: Path, fmt: str, samples: list[ExportSample], classes: list[str]) -> SourceScan:
    write, read = FORMATS[fmt]
    out = tmp_path / f"export-{fmt}"
    write(out, samples, classes)
    assert detect_format(out) == fmt
    return read(out)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_writer_reader_round_trip(tmp_path: Path, fmt: str) -> None:
    scan = _round_trip(tmp_path, fmt, ROUND_SAMPLES, ROUND_CLASSES)
    assert scan.findings == []
    assert scan.classes == ROUND_CLASSES
    items = {Path(i.name).name: i for i in scan.items}
    assert set(items) == {s.name for s in ROUND_SAMPLES}
    for s in ROUND_SAMPLES:
        item = items[s.name]
        assert item.split == s.split, s.name
        assert item.image_path.read_bytes() == s.data
        assert item.boxes is not None, s.name  # zero boxes stay labeled
        assert len(item.boxes) == len(s.boxes), s.name
        for got, want in zip(item.boxes, s.boxes, strict=True):
            assert _pixels(got, s.width, s.height) == pytest.approx(want[:4], abs=1e-3)
            assert got.cls == want[4]
            if fmt != "yolo":  # YOLO has no crowd flag
                assert got.crowd == want[5]
        if item.declared_size is not None:
            assert item.declared_size == (s.width, s.height)


@pytest.mark.parametrize(
    "fmt",
    [
        "coco",
        "yolo",
        pytest.param(
            "voc",
        ),
    ],
)
def test_writer_keeps_precision_on_large_images(tmp_path: Path, fmt: str) -> None:
    box = (12345.67, 100.25, 19999.99, 14000.5, "cell", False)
    sample = ExportSample("big.jpg", _jpeg(), 20_000, 15_000, [box], "train")
    scan = _round_trip(tmp_path, fmt, [sample], ROUND_CLASSES)
    (item,) = scan.items
    (got,) = item.boxes or []
    assert _pixels(got, 20_000, 15_000) == pytest.approx(box[:4], abs=1e-3)


@pytest.mark.parametrize(
    "fmt",
    [
        "coco",
        "yolo",
        pytest.param(
            "voc",
        ),
    ],
)
def test_writer_reader_keeps_class_list(tmp_path: Path, fmt: str) -> None:
    classes = ["zebra", "cell", "unused"]
    samples = [
        ExportSample("a.jpg", _jpeg(1), W, H, [(1.0, 1.0, 5.0, 5.0, "cell", False)], "train"),
        ExportSample("b.jpg", _jpeg(2), W, H, [(2.0, 2.0, 6.0, 6.0, "zebra", False)], "val"),
    ]
    assert _round_trip(tmp_path, fmt, samples, classes).classes == classes


def test_write_voc_flattens_equal_names(tmp_path: Path) -> None:
    samples = [
        ExportSample("x/a.jpg", _jpeg(1), W, H, [(1.0, 1.0, 5.0, 5.0, "cell", False)], "train"),
        ExportSample("y/a.jpg", _jpeg(2), W, H, [(2.0, 2.0, 6.0, 6.0, "platelet", False)], "val"),
    ]
    scan = _round_trip(tmp_path, "voc", samples, ROUND_CLASSES)
    assert scan.findings == []
    assert len(scan.items) == 2
    by_data = {i.image_path.read_bytes(): i for i in scan.items}
    assert [b.cls for b in by_data[samples[0].data].boxes or []] == ["cell"]
    assert [b.cls for b in by_data[samples[1].data].boxes or []] == ["platelet"]
    assert by_data[samples[1].data].split == "val"
