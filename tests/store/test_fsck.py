from __future__ import annotations

from visionloop.data.ingest import import_dataset
from visionloop.data.versions import snapshot
from visionloop.store.fsck import fsck


def test_clean_workspace_is_clean(any_ws, synth_day) -> None:
    import_dataset(any_ws, synth_day)
    snapshot(any_ws, "v1")
    rep = fsck(any_ws)
    assert rep.ok, rep.errors
    assert rep.blobs_checked == 24 + 2  # images, import report, manifest
    assert rep.unreferenced == []


def test_corrupt_and_missing_blobs_are_named(ws, synth_day) -> None:
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "v1")
    oids = sorted(o for o in ws.blobs if o != v.id)
    ws.blobs.path(oids[0]).write_bytes(b"bit rot")
    ws.blobs.path(oids[1]).unlink()
    rep = fsck(ws)
    assert not rep.ok
    text = "\n".join(rep.errors)
    assert f"blob {oids[0]}: content does not match its name" in text
    assert f"names blob {oids[1]}, which is missing" in text


def test_missing_manifest_is_an_error(ws, synth_day) -> None:
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "v1")
    ws.blobs.path(v.id).unlink()
    rep = fsck(ws)
    assert any(f"dataset version {v.id[:12]} names blob {v.id}, which is missing" in e for e in rep.errors)


def test_unreferenced_blobs_and_temp_files_are_not_errors(ws) -> None:
    stray = ws.blobs.put_bytes(b"left by a killed import")
    (ws.blobs.tmp / "abc.1234.tmp").write_bytes(b"half")
    rep = fsck(ws)
    assert rep.ok
    assert rep.unreferenced == [stray]
    assert rep.temp_files == 1
