from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from visionloop.data.export import export_version
from visionloop.data.ingest import import_dataset
from visionloop.data.synth import generate
from visionloop.data.versions import load_manifest, snapshot
from visionloop.errors import UsageError
from visionloop.store import schema
from visionloop.store.fsck import fsck
from visionloop.workspace import init_workspace, open_workspace


def _count(ws, table) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_bccd_import_counts_and_degenerate_boxes(any_ws, bccd: Path) -> None:
    res = import_dataset(any_ws, bccd)
    assert (res.format, res.scanned, res.accepted, res.new, res.rejected) == ("voc", 364, 364, 364, 0)
    assert res.boxes == 4886
    assert res.boxes_per_class == {"WBC": 372, "RBC": 4153, "Platelets": 361}
    degenerate = [(f.file, f.rule, f.severity) for f in res.findings]
    assert degenerate == [
        ("Annotations/BloodImage_00338.xml", "degenerate_box", "dropped"),
        ("Annotations/BloodImage_00343.xml", "degenerate_box", "dropped"),
    ]
    report = json.loads(Path(res.report_path or "").read_text())
    assert report["findings_summary"]["dropped"] == {"degenerate_box": 2}
    again = import_dataset(any_ws, bccd)
    assert (again.new, again.relabeled, again.unchanged) == (0, 0, 364)
    assert _count(any_ws, schema.images) == 364
    assert _count(any_ws, schema.labels) == 364


def test_bccd_survives_export_and_reimport(ws, bccd: Path, tmp_path: Path) -> None:
    import_dataset(ws, bccd)
    v1, _ = snapshot(ws, "bccd", keep_splits=True)
    export_version(ws, v1.id, "coco", tmp_path / "coco")
    fresh = init_workspace(tmp_path / "fresh")
    import_dataset(fresh, tmp_path / "coco")
    v2, _ = snapshot(fresh, "reimported", keep_splits=True)
    assert {e[0] for e in load_manifest(ws, v1)["items"]} == {e[0] for e in load_manifest(fresh, v2)["items"]}
    assert v2.stats["boxes_per_class"] == v1.stats["boxes_per_class"]
    assert v2.stats["splits"] == v1.stats["splits"]


def test_archives_import_like_folders(ws, synth_day: Path, tmp_path: Path) -> None:
    import shutil

    archive = shutil.make_archive(str(tmp_path / "ds"), "gztar", synth_day.parent, synth_day.name)
    res = import_dataset(ws, archive)
    assert (res.format, res.new) == ("yolo", 24)
    assert not any(ws.tmp.glob("import-*")), "the staging folder is removed"


def test_relabel_creates_a_revision_with_its_parent(ws, synth_day: Path, tmp_path: Path) -> None:
    import shutil

    import_dataset(ws, synth_day)
    changed = tmp_path / "c"
    shutil.copytree(synth_day, changed)
    label = sorted((changed / "labels" / "val").iterdir())[0]
    label.write_text("1 0.5 0.5 0.3 0.3\n")
    assert import_dataset(ws, changed).relabeled == 1
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(schema.labels.c.id, schema.labels.c.parent_id, schema.labels.c.origin).where(
                schema.labels.c.parent_id.is_not(None)
            )
        ).all()
    assert len(rows) == 1 and rows[0].origin == "import"
    assert _count(ws, schema.labels) == 25  # the old revision is kept


def test_bad_paths_are_usage_errors(ws, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        import_dataset(ws, tmp_path / "nope")
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(UsageError, match=r"must be a \.zip or \.tar"):
        import_dataset(ws, f)


def test_a_failed_transaction_records_nothing(ws, synth_day: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from visionloop.data import ingest

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "_record", boom)
    with pytest.raises(RuntimeError):
        import_dataset(ws, synth_day)
    assert _count(ws, schema.items) == 0
    assert _count(ws, schema.imports) == 0
    assert ws.classes() == []
    assert fsck(ws).ok


_RUNNER = """
import sys
from visionloop.workspace import open_workspace
from visionloop.data.ingest import import_dataset
import_dataset(open_workspace(sys.argv[1]), sys.argv[2])
"""


def test_kill_9_mid_import_leaves_a_clean_workspace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, images=400, seed=3, size=160)
    ws = init_workspace(tmp_path / "p")
    ws.close()
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(tmp_path / "p"), str(data)])
    staged = tmp_path / "p" / ".visionloop" / "tmp" / "blobs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(1 for _ in staged.glob("*.tmp")) < 20:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ws = open_workspace(tmp_path / "p")
    assert len(ws.blobs.temp_files()) >= 20, "the kill landed in the middle of the import"
    rep = fsck(ws)
    assert rep.ok, rep.errors
    assert rep.temp_files >= 20 and _count(ws, schema.items) == 0
    res = import_dataset(ws, data)
    assert res.new == 400
    rep = fsck(ws, clean_temp=True)
    assert rep.ok and rep.unreferenced == []
    assert ws.blobs.temp_files() == []
