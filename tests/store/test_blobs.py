from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from visionloop.errors import BlobCorruptError, BlobNotFoundError
from visionloop.store.blobs import BlobStore, is_oid, sha256_hex


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return BlobStore(str(tmp_path / "blobs"))
    return BlobStore(f"memory://vl-{tmp_path.name}")


def test_put_is_content_addressed_and_idempotent(store: BlobStore) -> None:
    oid = store.put_bytes(b"hello")
    assert oid == hashlib.sha256(b"hello").hexdigest()
    assert store.put_bytes(b"hello") == oid
    assert store.get(oid, verify=True) == b"hello"
    assert store.has(oid)
    assert list(store) == [oid]
    assert store.size(oid) == 5


def test_layout_uses_two_hex_digit_folders(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"))
    oid = store.put_bytes(b"x")
    assert (tmp_path / "b" / oid[:2] / oid[2:]).read_bytes() == b"x"
    assert store.temp_files() == []


def test_missing_blob_is_a_clear_error(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError, match="missing"):
        store.get(sha256_hex(b"nothing"))


def test_corrupt_blob_is_detected_on_verified_read(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"))
    oid = store.put_bytes(b"original")
    store.path(oid).write_bytes(b"tampered")
    assert store.get(oid) == b"tampered"
    with pytest.raises(BlobCorruptError, match=oid[:12]):
        store.get(oid, verify=True)


def test_flush_is_safe_to_call_repeatedly(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"))
    store.put_bytes(b"a")
    store.flush()
    store.flush()


def test_oid_shape() -> None:
    assert is_oid("a" * 64)
    assert not is_oid("A" * 64)
    assert not is_oid("../etc/passwd")
    with pytest.raises(BlobNotFoundError):
        BlobStore("memory://x").get("../../etc/passwd")


def test_staged_blobs_appear_only_when_published(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"))
    oid = store.stage(b"bulk")
    assert store.stage(b"bulk") == oid
    assert not store.has(oid) and len(store.temp_files()) == 1
    assert store.publish_staged() == 1
    assert store.get(oid, verify=True) == b"bulk"
    assert store.temp_files() == [] and store.publish_staged() == 0


def test_discarded_staged_blobs_leave_nothing(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "b"))
    oid = store.stage(b"abandoned")
    store.discard_staged()
    assert not store.has(oid) and store.temp_files() == []
