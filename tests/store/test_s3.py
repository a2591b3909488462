"""The blob store and a whole import on a real S3-compatible server (moto's, on 127.0.0.1)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.data.ingest import import_dataset
from visionloop.data.versions import load_manifest, snapshot
from visionloop.store.blobs import BlobStore
from visionloop.store.fsck import fsck
from visionloop.workspace import init_workspace, open_workspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs", reason="s3fs is not installed (dev / scale extra)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the S3 test server did not start")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_options(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return {"endpoint_url": s3_endpoint}


def test_blob_store_on_s3(s3_options: dict[str, str], tmp_path: Path) -> None:
    store = BlobStore(f"s3://vl-{tmp_path.name.lower().replace('_', '-')[:40]}/blobs", options=s3_options)
    oid = store.put_bytes(b"over http")
    assert store.put_bytes(b"over http") == oid
    assert store.get(oid, verify=True) == b"over http"
    assert list(store) == [oid]


def test_workspace_with_s3_blobs(s3_options: dict[str, str], tmp_path: Path, synth_day: Path) -> None:
    init_workspace(tmp_path / "p", blobs="s3://vl-ws/blobs", blob_options=s3_options).close()
    ws = open_workspace(tmp_path / "p")
    assert not ws.blobs.local
    res = import_dataset(ws, synth_day)
    assert res.new == 24
    v, _ = snapshot(ws, "on s3")
    assert len(load_manifest(ws, v)["items"]) == 24
    assert not any((ws.root / "blobs").glob("??/*")), "nothing is stored locally"
    assert fsck(ws).ok
