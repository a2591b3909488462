"""A workspace whose production model (v1) is a tiny SSDlite trained on `day` scenes, exported, with
its monitoring reference built; copied for each test."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionloop.workspace import Workspace, open_workspace

SIZE = 96


@pytest.fixture(scope="session")
def monitored_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="training the test model needs the train extra")
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.run import export_model
    from visionloop.monitor.reference import build_reference
    from visionloop.registry.aliases import promote
    from visionloop.registry.versions import set_status
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    base = tmp_path_factory.mktemp("monitored")
    generate(base / "day", images=300, seed=4, size=SIZE)
    with init_workspace(base / "p") as ws:
        import_dataset(ws, base / "day")
        snapshot(ws, "day", keep_splits=True)
        train(ws, "latest", TrainConfig(epochs=1, imgsz=SIZE, batch_size=8, augment="light", seed=0))
        export_model(ws, 1, parity_images=2, int8=False, ort=False)
        set_status(ws, 1, "approved")
        promote(ws, 1, actor="test", reason="day model")
        build_reference(ws, 1)
    return base / "p"


@pytest.fixture
def mws(monitored_project: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of the monitored workspace."""
    root = Path(shutil.copytree(monitored_project, tmp_path / "p"))
    with open_workspace(root) as w:
        yield w


def traffic(domain: str, n: int, seed: int) -> list[tuple[Any, Any]]:
    """``n`` production images of ``domain`` (PIL, as the server decodes JPEG uploads) with truth."""
    from PIL import Image

    from visionloop.data.synth import render_scene

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image, truth = render_scene(rng, domain, SIZE)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        out.append((Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), truth))
    return out
