"""The release routes: manifests per device with ETag/304, files by hash with Range."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from visionloop.distribute.http import parse_range, release_router
from visionloop.distribute.releases import kill_release, publish_release
from visionloop.registry.versions import get_model


@pytest.fixture
def client(rws) -> TestClient:
    api = FastAPI()
    api.include_router(release_router(rws))
    return TestClient(api)


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=95-200", 100, (95, 99)),
        ("bytes=100-", 100, None),
        ("bytes=5-1", 100, None),
        ("bytes=-0", 100, None),
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
        ("bytes=-", 100, None),
    ],
)
def test_parse_range(header: str, size: int, span: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == span


def test_manifest_etag_and_304(rws, client) -> None:
    assert client.get("/v1/releases/stable/manifest").status_code == 404
    r1 = publish_release(rws, 1)
    res = client.get("/v1/releases/stable/manifest", params={"device_id": "a"})
    assert res.status_code == 200 and res.content == r1.envelope_bytes()
    etag = res.headers["etag"]
    assert etag == f'"{hashlib.sha256(res.content).hexdigest()[:32]}"'
    same = client.get("/v1/releases/stable/manifest?device_id=a", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    publish_release(rws, 2)
    moved = client.get("/v1/releases/stable/manifest?device_id=a", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    assert moved.json()["manifest"]["model_version"] == 2
    assert client.get("/v1/releases/Bad!/manifest").status_code == 400


def test_manifest_follows_rollout_and_kill(rws, client) -> None:
    publish_release(rws, 1)
    publish_release(rws, 2, rollout_percent=20)
    versions = [
        client.get(f"/v1/releases/stable/manifest?device_id=d{i}").json()["manifest"]["model_version"]
        for i in range(200)
    ]
    assert 20 <= versions.count(2) <= 60 and versions.count(1) + versions.count(2) == 200
    killed = kill_release(rws)
    for i in range(0, 200, 20):
        m = client.get(f"/v1/releases/stable/manifest?device_id=d{i}").json()["manifest"]
        assert (m["model_version"], m["sequence"], m["kind"]) == (1, killed.sequence, "kill")


def test_files_by_hash_with_ranges(rws, client) -> None:
    publish_release(rws, 1)
    oid = get_model(rws, 1).artifacts["model.onnx"]
    data = rws.blobs.get(oid)
    size = len(data)
    full = client.get(f"/v1/releases/files/{oid}")
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and int(full.headers["content-length"]) == size
    part = client.get(f"/v1/releases/files/{oid}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{size}"
    tail = client.get(f"/v1/releases/files/{oid}", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    for bad in (f"bytes={size}-", "bytes=9-3", "lines=1-2"):
        res = client.get(f"/v1/releases/files/{oid}", headers={"Range": bad})
        assert res.status_code == 416 and res.headers["content-range"] == f"bytes */{size}"
    weights = get_model(rws, 1).weights_oid  # a blob, but no release names it
    assert client.get(f"/v1/releases/files/{weights}").status_code == 404
    assert client.get("/v1/releases/files/..%2F..%2Fvisionloop.toml").status_code == 404


def test_serve_app_mounts_the_release_routes_behind_its_api_key(rws) -> None:
    from visionloop.registry.aliases import promote
    from visionloop.serve.app import create_app
    from visionloop.serve.follow import AliasFollower, open_alias
    from visionloop.serve.model import Holder

    promote(rws, 1, alias="production", actor="test", reason=None)
    holder = Holder(open_alias(rws, "production"))
    api = create_app(holder, api_key="k", follower=AliasFollower(rws, "production", holder))
    publish_release(rws, 2)
    with TestClient(api) as c:
        assert c.get("/v1/releases/stable/manifest").status_code == 401
        res = c.get("/v1/releases/stable/manifest", headers={"X-API-Key": "k"})
        assert res.status_code == 200 and json.loads(res.content)["manifest"]["model_version"] == 2
