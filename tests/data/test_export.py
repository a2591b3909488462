from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from visionloop.data import labels as labelset
from visionloop.data.export import export_version
from visionloop.data.ingest import import_dataset
from visionloop.data.versions import load_manifest, snapshot
from visionloop.errors import UsageError
from visionloop.workspace import Workspace, init_workspace


def _contents(ws: Workspace, version) -> dict[str, tuple]:
    """image oid → (sorted boxes, split), from the stored labels."""
    from sqlalchemy import select

    from visionloop.store import schema

    manifest = load_manifest(ws, version)
    with ws.engine.connect() as conn:
        texts = dict(conn.execute(select(schema.labels.c.oid, schema.labels.c.boxes)).all())
    return {img: (sorted(labelset.parse(texts[loid])), split) for img, loid, split, _ in manifest["items"]}


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_round_trip_is_lossless(ws, synth_day: Path, tmp_path: Path, fmt: str) -> None:
    extra = tmp_path / "extra"
    (extra / "images" / "train").mkdir(parents=True)
    (extra / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 10, 10)).save(extra / "images" / "train" / "empty.png")
    (extra / "labels" / "train" / "empty.txt").write_text("")
    (extra / "data.yaml").write_text("names: [disc, square, triangle, cross]\n")
    import_dataset(ws, synth_day)
    import_dataset(ws, extra)
    v1, _ = snapshot(ws, "v1", keep_splits=True)
    summary = export_version(ws, v1.id, fmt, tmp_path / fmt)
    assert summary["images"] == 25
    fresh = init_workspace(tmp_path / f"fresh-{fmt}")
    res = import_dataset(fresh, tmp_path / fmt)
    assert res.findings == []
    v2, _ = snapshot(fresh, "v2", keep_splits=True)
    a, b = _contents(ws, v1), _contents(fresh, v2)
    assert a.keys() == b.keys()
    for oid in a:
        boxes_a, split_a = a[oid]
        boxes_b, split_b = b[oid]
        assert split_a == split_b
        assert [x[4:] for x in boxes_a] == [x[4:] for x in boxes_b]
        for ba, bb in zip(boxes_a, boxes_b, strict=True):
            assert max(abs(p - q) for p, q in zip(ba[:4], bb[:4], strict=True)) < 0.011
    assert sorted(fresh.classes()) == sorted(ws.classes())
    assert v2.stats["boxes_per_image"]["histogram"]["0"] == 1


def test_export_refuses_a_non_empty_folder(ws, synth_day: Path, tmp_path: Path) -> None:
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "v")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        export_version(ws, v.id, "coco", tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    with pytest.raises(UsageError, match="unknown export format 'tfrecord'"):
        export_version(ws, v.id, "tfrecord", tmp_path / "new")


def test_export_then_import_into_the_same_workspace_adds_nothing(ws, synth_day: Path, tmp_path: Path) -> None:
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "v", keep_splits=True)
    export_version(ws, v.id, "yolo", tmp_path / "y")
    res = import_dataset(ws, tmp_path / "y")
    assert (res.new, res.relabeled, res.unchanged) == (0, 0, 24)
