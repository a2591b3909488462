"""A workspace with two trained, exported (not published) model versions, and a live HTTP server."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.workspace import Workspace, open_workspace


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose workspace holds v1 and v2 (tiny models, seeds 0 and 1), exported and approved."""
    pytest.importorskip("torch", reason="building the test models needs the train extra")
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.run import export_model
    from visionloop.registry.versions import set_status
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    base = tmp_path_factory.mktemp("releases")
    generate(base / "data", images=12, seed=5, size=64)
    with init_workspace(base / "p") as ws:
        import_dataset(ws, base / "data")
        snapshot(ws, "s", keep_splits=True)
        for seed in (0, 1):
            train(ws, "latest", TrainConfig(epochs=1, imgsz=64, batch_size=4, augment="none", seed=seed))
        for v in (1, 2):
            export_model(ws, v, parity_images=2, int8=False, ort=False)
            set_status(ws, v, "approved")
    return base / "p"


@pytest.fixture
def rws(two_models: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of the two-model workspace (tests publish, kill and damage blobs)."""
    with open_workspace(shutil.copytree(two_models, tmp_path / "p")) as ws:
        yield ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def release_server(rws: Workspace) -> Iterator[str]:
    """The release routes over ``rws``, served by uvicorn on a free 127.0.0.1 port; its base URL."""
    import uvicorn
    from fastapi import FastAPI

    from visionloop.distribute.http import release_router

    api = FastAPI()
    api.include_router(release_router(rws))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
