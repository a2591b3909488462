from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from visionloop.config import SplitConfig
from visionloop.data.ingest import import_dataset
from visionloop.data.split import choose_split, hash_split
from visionloop.data.versions import diff_versions, list_versions, load_manifest, resolve, snapshot
from visionloop.errors import AmbiguousVersionError, VersionNotFoundError
from visionloop.store.blobs import sha256_hex
from visionloop.workspace import init_workspace


def test_same_content_same_id_and_noop(any_ws, synth_day) -> None:
    import_dataset(any_ws, synth_day)
    v1, created = snapshot(any_ws, "first")
    assert created
    again, created = snapshot(any_ws, "second try")
    assert not created and again.id == v1.id
    assert [v.id for v in list_versions(any_ws)] == [v1.id]
    assert v1.n_images == 24
    assert sum(v1.stats["boxes_per_class"].values()) == v1.n_boxes


def test_two_workspaces_with_the_same_data_agree(tmp_path: Path, synth_day) -> None:
    ids = []
    for name in ("a", "b"):
        ws = init_workspace(tmp_path / name)
        import_dataset(ws, synth_day)
        ids.append(snapshot(ws, name)[0].id)
    assert ids[0] == ids[1]


def test_id_is_the_manifest_hash(ws, synth_day) -> None:
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "m")
    assert sha256_hex(ws.blobs.get(v.id)) == v.id
    manifest = load_manifest(ws, v)
    assert manifest["format"] == "visionloop.manifest/1"
    assert [e[0] for e in manifest["items"]] == sorted(e[0] for e in manifest["items"])


def test_unlabeled_items_are_not_in_a_version(ws, synth_day, tmp_path: Path) -> None:
    import_dataset(ws, synth_day)
    plain = tmp_path / "plain"
    shutil.copytree(synth_day / "images", plain)
    extra = plain / "extra.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (9, 9, 9)).save(extra)
    res = import_dataset(ws, plain, fmt="images")
    assert res.new == 1 and res.unchanged == 24 and res.unlabeled == 25
    assert snapshot(ws, "m")[0].n_images == 24


def test_splits_are_stable_as_data_grows() -> None:
    ratios = SplitConfig()
    oids = [sha256_hex(str(i).encode()) for i in range(3000)]
    splits = {o: hash_split(o, ratios) for o in oids}
    shares = {s: list(splits.values()).count(s) / len(oids) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.7) < 0.03 and abs(shares["val"] - 0.15) < 0.03
    assert all(hash_split(o, ratios) == s for o, s in splits.items())
    assert choose_split(oids[0], "test", ratios, keep_source=True) == "test"
    assert choose_split(oids[0], None, ratios, keep_source=True) == splits[oids[0]]


def test_keep_splits_uses_the_source_splits(ws, synth_day) -> None:
    import_dataset(ws, synth_day)
    kept, _ = snapshot(ws, "kept", keep_splits=True)
    expected = {s: len(list((synth_day / "images" / s).iterdir())) for s in ("train", "val", "test")}
    assert {s: kept.stats["splits"][s]["images"] for s in expected} == expected
    hashed, created = snapshot(ws, "hashed", keep_splits=False)
    assert created and hashed.parent == kept.id


def test_diff_reports_added_removed_relabeled(ws, synth_day, tmp_path: Path) -> None:
    import_dataset(ws, synth_day)
    v1, _ = snapshot(ws, "v1")
    changed = tmp_path / "changed"
    shutil.copytree(synth_day, changed)
    label = sorted((changed / "labels" / "train").iterdir())[0]
    label.write_text("0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n")
    res = import_dataset(ws, changed)
    assert res.relabeled == 1
    v2, _ = snapshot(ws, "v2")
    d = diff_versions(ws, v1.id, v2.id)
    assert (d["added"], d["removed"], d["relabeled"]) == (0, 0, 1)
    assert d["examples"]["relabeled"] == [f"images/train/{label.stem}.jpg"]
    disc = d["boxes_per_class"]["disc"]
    assert disc["delta"] == disc["to"] - disc["from"]
    assert sum(x["to"] for x in d["boxes_per_class"].values()) == v2.n_boxes
    back = diff_versions(ws, v2.id[:8], v1.id[:8])
    assert back["relabeled"] == 1 and back["boxes_per_class"]["disc"]["delta"] == -disc["delta"]


def test_resolve_refs(ws, synth_day) -> None:
    with pytest.raises(VersionNotFoundError, match="no dataset version yet"):
        resolve(ws, "latest")
    import_dataset(ws, synth_day)
    v, _ = snapshot(ws, "m")
    assert resolve(ws, "latest").id == v.id
    assert resolve(ws, v.id[:6]).id == v.id
    with pytest.raises(VersionNotFoundError, match="no dataset version 'ffffffff'"):
        resolve(ws, "ffffffff")


def test_ambiguous_prefix(ws, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from visionloop.data import versions

    fake = [
        versions.VersionInfo(p + "0" * 60, None, "m", datetime.now(UTC), 0, 0, {}) for p in ("abcd", "abce")
    ]
    monkeypatch.setattr(versions, "list_versions", lambda _ws: fake)
    with pytest.raises(AmbiguousVersionError, match="'abc' matches 2"):
        resolve(ws, "abc")
    assert resolve(ws, "abce").id == fake[1].id


@pytest.mark.usefixtures("bccd")
def test_bccd_version_stats(ws, bccd) -> None:
    import_dataset(ws, bccd)
    v, _ = snapshot(ws, "bccd", keep_splits=True)
    assert (v.n_images, v.n_boxes) == (364, 4886)
    assert v.stats["boxes_per_class"] == {"WBC": 372, "RBC": 4153, "Platelets": 361}
    assert {s: v.stats["splits"][s]["images"] for s in ("train", "val", "test")} == {
        "train": 205,
        "val": 87,
        "test": 72,
    }
