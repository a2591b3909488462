"""A workspace with three trained and exported model versions (tiny models), copied for each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.registry.versions import set_status
from visionloop.workspace import Workspace, open_workspace


@pytest.fixture(scope="session")
def exported_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose workspace holds v1, v2, v3: trained (seeds 0, 1, 2), exported, approved,
    not published, no alias."""
    pytest.importorskip("torch", reason="building the test models needs the train extra")
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.run import export_model
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    base = tmp_path_factory.mktemp("served")
    generate(base / "data", images=16, seed=4, size=96)
    with init_workspace(base / "p") as ws:
        import_dataset(ws, base / "data")
        snapshot(ws, "s", keep_splits=True)
        for seed in (0, 1, 2):
            train(ws, "latest", TrainConfig(epochs=1, imgsz=96, batch_size=4, augment="light", seed=seed))
        for v in (1, 2, 3):
            export_model(ws, v, parity_images=2, int8=False, ort=False)
            set_status(ws, v, "approved")
    return base / "p"


@pytest.fixture
def project(exported_project: Path, tmp_path: Path) -> Path:
    """A private copy of the exported project (tests move aliases and damage blobs)."""
    return Path(shutil.copytree(exported_project, tmp_path / "p"))


@pytest.fixture
def ws(project: Path) -> Iterator[Workspace]:
    with open_workspace(project) as w:
        yield w
