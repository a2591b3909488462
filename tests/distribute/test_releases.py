"""Publishing, staged rollout, the kill switch and the history of a channel (on real bundles)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from visionloop.distribute import ReleaseError
from visionloop.distribute.releases import (
    get_release,
    kill_release,
    list_releases,
    publish_release,
    release_for,
    released_files,
)
from visionloop.distribute.rollout import stable_bucket
from visionloop.distribute.signing import canonical_bytes, key_id, load_key, verify
from visionloop.errors import UsageError
from visionloop.export.bundle import MANIFEST
from visionloop.registry.versions import get_model
from visionloop.store import schema

DEVICES = [f"phone-{i}" for i in range(1000)]


def test_releases_table_matches_the_schema(rws) -> None:
    cols = {c["name"] for c in inspect(rws.engine).get_columns("releases")}
    assert cols == set(schema.releases.columns.keys())


def test_publish_signs_a_manifest_of_the_bundle_files(rws) -> None:
    assert MANIFEST not in get_model(rws, 1).artifacts  # exported only: published on the way
    r = publish_release(rws, 1, channel="stable", min_app_version="2.1.0", expires_days=7)
    mv = get_model(rws, 1)
    m = r.manifest
    assert (r.sequence, r.model_version, r.kind, r.rollout_percent) == (1, 1, "publish", 100)
    assert m["bundle_sha256"] == mv.artifacts[MANIFEST]
    assert m["formats"] == {
        "onnx": {
            "sha256": mv.artifacts["model.onnx"],
            "size": rws.blobs.size(mv.artifacts["model.onnx"]),
            "path": f"/v1/releases/files/{mv.artifacts['model.onnx']}",
        }
    }
    assert m["min_app_version"] == "2.1.0" and m["channel"] == "stable"
    assert m["issued_at"] < m["expires_at"] and m["expires_at"].endswith("Z")
    public = load_key(rws.root).public_key()
    assert m["key_id"] == key_id(public) == r.key_id
    assert r.manifest_text.encode() == canonical_bytes(m)
    assert verify(public, m, r.signature)
    assert json.loads(r.envelope_bytes()) == {"manifest": m, "signature": r.signature}
    assert released_files(rws) == {mv.artifacts["model.onnx"]}


def test_sequence_is_monotonic_per_channel(rws) -> None:
    seqs = [publish_release(rws, v, channel="stable").sequence for v in (1, 2, 1, 2)]
    assert seqs == [1, 2, 3, 4]
    assert publish_release(rws, 2, channel="beta").sequence == 1
    assert [r.sequence for r in list_releases(rws, "stable")] == [4, 3, 2, 1]
    assert get_release(rws, "stable").sequence == 4
    assert get_release(rws, "stable", 2).model_version == 2
    assert get_release(rws, "stable", 3).previous_id == get_release(rws, "stable", 2).id


def test_staged_rollout_twenty_percent_is_stable(rws) -> None:
    publish_release(rws, 1)
    staged = publish_release(rws, 2, rollout_percent=20)
    got = {d: release_for(rws, "stable", d) for d in DEVICES}
    new = [d for d, r in got.items() if r is not None and r.model_version == 2]
    assert 0.16 <= len(new) / len(DEVICES) <= 0.24
    assert all(r is not None for r in got.values())
    assert {r.sequence for r in got.values() if r is not None} == {1, 2}
    assert all(stable_bucket(d, "stable", staged.sequence) < 20 for d in new)
    again = {d: release_for(rws, "stable", d) for d in DEVICES}
    assert {d: r.sequence if r else None for d, r in again.items()} == {
        d: r.sequence if r else None for d, r in got.items()
    }


def test_kill_switch_sends_every_device_back_with_a_higher_sequence(rws) -> None:
    old = publish_release(rws, 1)
    publish_release(rws, 2, rollout_percent=20)
    bad = publish_release(rws, 2, rollout_percent=100)  # widening the same model is no step back
    killed = kill_release(rws, channel="stable", actor="oncall")
    assert killed.sequence == bad.sequence + 1 and killed.kind == "kill"
    assert killed.model_version == 1 and killed.rollout_percent == 100
    assert killed.manifest["formats"] == old.manifest["formats"]
    assert verify(load_key(rws.root).public_key(), killed.manifest, killed.signature)
    for d in DEVICES:
        r = release_for(rws, "stable", d)
        assert r is not None and r.id == killed.id
    with pytest.raises(ReleaseError, match="no earlier model than v1"):
        kill_release(rws, channel="stable")


def test_refusals_say_what_to_do(rws) -> None:
    with pytest.raises(ReleaseError, match="has no release to kill"):
        kill_release(rws, channel="beta")
    with pytest.raises(UsageError, match="invalid channel name"):
        publish_release(rws, 1, channel="Stable!")
    with pytest.raises(UsageError, match="whole percent from 1 to 100"):
        publish_release(rws, 1, rollout_percent=0)
    with pytest.raises(UsageError, match=r"is not X\.Y\.Z"):
        publish_release(rws, 1, min_app_version="2.1")
    with pytest.raises(UsageError, match="between 1 and 3650"):
        publish_release(rws, 1, expires_days=0)
    with pytest.raises(ReleaseError, match="has no release 9"):
        get_release(rws, "stable", 9)
    assert list_releases(rws) == []
