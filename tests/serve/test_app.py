"""The HTTP API over a real bundle (a tiny model trained, exported and bundled here)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="building the test bundle needs the train extra")
pytest.importorskip("fastapi", reason="serving needs the serve extra")

from fastapi.testclient import TestClient
from PIL import Image

from visionloop.data.ingest import import_dataset
from visionloop.data.synth import generate
from visionloop.data.versions import snapshot
from visionloop.export.bundle import write_bundle
from visionloop.export.run import export_model
from visionloop.serve.app import create_app
from visionloop.train.config import TrainConfig
from visionloop.train.run import train
from visionloop.workspace import init_workspace


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("serve")
    generate(base / "data", images=16, seed=4, size=96)
    ws = init_workspace(base / "p")
    import_dataset(ws, base / "data")
    snapshot(ws, "s", keep_splits=True)
    train(ws, "latest", TrainConfig(epochs=1, imgsz=96, batch_size=4, augment="light"))
    export_model(ws, 1, parity_images=2, int8=False, ort=False)
    return write_bundle(ws, 1, base / "bundle").path


def _png(size: tuple[int, int] = (120, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_detect_raw_bytes_and_multipart(bundle: Path) -> None:
    client = TestClient(create_app(bundle))
    r = client.post("/v1/detect?score_threshold=0", content=_png(), headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1 and body["image"] == {"width": 120, "height": 90}
    for d in body["detections"]:
        assert d["class"] in {"disc", "square", "triangle", "cross"} and 0 <= d["score"] <= 1
        assert 0 <= d["box"][0] <= d["box"][2] <= 120.5
    r = client.post("/v1/detect", files={"file": ("a.png", _png(), "image/png")})
    assert r.status_code == 200 and r.json()["model_version"] == 1


def test_bad_requests_get_clear_4xx(bundle: Path) -> None:
    client = TestClient(create_app(bundle, max_upload_bytes=1000))
    r = client.post("/v1/detect", content=b"not an image at all", headers={"content-type": "image/png"})
    assert r.status_code == 415 and "not a decodable image" in r.json()["error"]
    r = client.post("/v1/detect", content=b"x" * 5000, headers={"content-type": "image/png"})
    assert r.status_code == 413 and "limit is 1000" in r.json()["error"]
    r = client.post("/v1/detect", content=b"")
    assert r.status_code == 400


def test_api_key_health_model_and_metrics(bundle: Path) -> None:
    client = TestClient(create_app(bundle, api_key="s3cret"))
    assert client.post("/v1/detect", content=_png()).status_code == 401
    assert client.post("/v1/detect", content=_png(), headers={"x-api-key": "wrong"}).status_code == 401
    assert client.post("/v1/detect", content=_png(), headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model_version"] == 1
    model = client.get("/v1/model", headers={"authorization": "Bearer s3cret"}).json()
    assert model["classes"] == ["disc", "square", "triangle", "cross"] and model["input"]["width"] == 96
    text = client.get("/metrics").text
    assert 'visionloop_requests_total{model_version="1",route="production",status="200"} 1.0' in text
    assert 'visionloop_requests_total{model_version="1",route="production",status="401"} 2.0' in text
    assert "visionloop_detect_seconds_bucket" in text


def test_a_tampered_bundle_is_never_served(bundle: Path, tmp_path: Path) -> None:
    import shutil

    from visionloop.errors import DataError
    from visionloop.serve.model import Holder, load

    bad = tmp_path / "bad"
    shutil.copytree(bundle, bad)
    with (bad / "model.onnx").open("ab") as f:
        f.write(b"x")
    holder = Holder(load(bundle))
    with pytest.raises(DataError, match="does not match its sha256"):
        holder.swap(bad)
    assert holder.current.bundle.path == bundle


_NO_TORCH = """
import sys, json, time
from fastapi.testclient import TestClient
from visionloop.serve.app import create_app
mode, source, image = sys.argv[1:]
if mode == "bundle":
    app = create_app(source)
else:  # v1 is production, exported but not published: publishing and swapping must not need torch
    from visionloop.registry.aliases import promote
    from visionloop.serve.follow import AliasFollower, open_alias
    from visionloop.serve.model import Holder
    from visionloop.workspace import open_workspace
    ws = open_workspace(source)
    holder = Holder(open_alias(ws, "production"))
    app = create_app(holder, follower=AliasFollower(ws, "production", holder, poll_seconds=0.05))
versions = []
with TestClient(app) as client:
    r = client.post("/v1/detect", content=open(image, "rb").read())
    versions.append(r.json()["model_version"])
    if mode == "alias":
        promote(ws, 2, actor="test", reason=None)
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["model_version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        versions.append(client.post("/v1/detect", content=open(image, "rb").read()).json()["model_version"])
print(json.dumps({"status": r.status_code, "versions": versions, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("mode", ["bundle", "alias"])
def test_serving_never_imports_torch(mode: str, bundle: Path, project: Path, tmp_path: Path) -> None:
    """Neither a bundle folder nor an alias (publish, materialize, load, swap) imports torch."""
    from visionloop.registry.aliases import promote
    from visionloop.workspace import open_workspace

    if mode == "alias":
        with open_workspace(project) as ws:
            promote(ws, 1, actor="test", reason=None)
    image = tmp_path / "a.png"
    image.write_bytes(_png())
    source = str(bundle if mode == "bundle" else project)
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, mode, source, str(image)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    versions = [1] if mode == "bundle" else [1, 2]
    assert json.loads(out.strip().splitlines()[-1]) == {"status": 200, "versions": versions, "torch": False}
