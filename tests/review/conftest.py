"""Workspaces for the review tests.

- ``queue_ws``: unlabeled synthetic images proposed by a table-driven detector (no model, no torch),
  so every proposal, score and priority is known.
- ``prod_ws``: a copy of a workspace whose tiny production model was trained, exported, bundled and
  promoted by the real pipeline, plus unlabeled images for it to propose on.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from visionloop.data.ingest import import_dataset
from visionloop.data.synth import SYNTH_CLASSES, render_scene
from visionloop.review.autolabel import propose
from visionloop.serve.model import decode
from visionloop.workspace import Workspace, init_workspace, open_workspace

FLIP = Image.Transpose.FLIP_LEFT_RIGHT

#: The proposals of the table detector, image by image (64 × 64 scenes, seed 3).
TABLE: list[list[dict[str, Any]]] = [
    [{"class": "disc", "box": [4.0, 4.0, 20.0, 20.0], "score": 0.95}],
    [
        {"class": "square", "box": [10.0, 10.0, 30.0, 40.0], "score": 0.4},
        {"class": "cross", "box": [33.5, 2.25, 60.0, 30.0], "score": 0.3},
    ],
    [],
    [{"class": "triangle", "box": [40.0, 40.0, 63.0, 63.0], "score": 0.7}],
]


def save_scenes(folder: Path, n: int, seed: int, size: int = 64, ext: str = "png") -> list[Path]:
    """``n`` synthetic scenes as image files (no labels: they import as unlabeled)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img, _ = render_scene(rng, "day", size)
        path = folder / f"scene{i}.{ext}"
        img.save(path)
        paths.append(path)
    return paths


def _key(rgb: Image.Image) -> str:
    return hashlib.sha256(rgb.tobytes()).hexdigest()


def mirror(boxes: list[dict[str, Any]], width: int) -> list[dict[str, Any]]:
    """Boxes of an image as they lie on its horizontal mirror."""
    return [{**b, "box": [width - b["box"][2], b["box"][1], width - b["box"][0], b["box"][3]]} for b in boxes]


def ls_answers(tasks: list[dict[str, Any]], annotator: Any = None) -> list[dict[str, Any]]:
    """What Label Studio's JSON export gives for imported tasks whose predictions were submitted as is."""
    out = []
    for n, task in enumerate(tasks):
        result = [{k: v for k, v in r.items() if k != "score"} for r in task["predictions"][0]["result"]]
        ann = {
            "id": 100 + n,
            "completed_by": annotator if annotator is not None else {"id": 7, "email": "ann@example.com"},
            "result": result,
            "was_cancelled": False,
            "created_at": "2026-11-27T10:00:00Z",
            "updated_at": "2026-11-27T10:00:00Z",
        }
        out.append({**copy.deepcopy(task), "id": 1000 + n, "annotations": [ann]})
    return out


class TableDetector:
    """A detector that answers from a table: image content → boxes. Unless told otherwise, the
    mirrored image gets the mirrored boxes, so the two runs agree."""

    def __init__(self) -> None:
        self.table: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0

    def add(
        self, rgb: Image.Image, boxes: list[dict[str, Any]], flipped: list[dict[str, Any]] | None = None
    ) -> None:
        self.table[_key(rgb)] = boxes
        self.table[_key(rgb.transpose(FLIP))] = mirror(boxes, rgb.width) if flipped is None else flipped

    def __call__(self, rgb: Image.Image, min_score: float) -> list[dict[str, Any]]:
        self.calls += 1
        return [b for b in self.table[_key(rgb)] if b["score"] >= min_score]


def make_queue_ws(root: Path, database: str = "") -> tuple[Workspace, list[Path], TableDetector]:
    """A workspace with the four :data:`TABLE` images imported unlabeled and a detector for them."""
    ws = init_workspace(root / "q", classes=list(SYNTH_CLASSES), database=database)
    paths = save_scenes(root / "images", len(TABLE), seed=3)
    import_dataset(ws, root / "images")
    det = TableDetector()
    for path, boxes in zip(paths, TABLE, strict=True):
        det.add(decode(path.read_bytes()), boxes)
    return ws, paths, det


@pytest.fixture
def queue_ws(tmp_path: Path) -> Iterator[Workspace]:
    """Four images proposed by the table detector as model version 3: four pending tasks."""
    ws, _, det = make_queue_ws(tmp_path)
    propose(ws, 3, det, min_score=0.25)
    yield ws
    ws.close()


@pytest.fixture(scope="session")
def production_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose production model (v1) went through the whole pipeline, with 24 labeled and
    6 unlabeled images."""
    pytest.importorskip("torch", reason="training the production model needs the train extra")
    from pipeline.conftest import make_loop_ws
    from visionloop.data.synth import generate
    from visionloop.pipeline.runner import run_pipeline

    base = tmp_path_factory.mktemp("review")
    generate(base / "day", images=24, seed=7, size=64)
    save_scenes(base / "unlabeled", 6, seed=11, ext="jpg")
    with make_loop_ws(base / "p") as ws:
        import_dataset(ws, base / "day")
        run = run_pipeline(ws)
        assert run.status == "succeeded", run.error
        import_dataset(ws, base / "unlabeled")
    return base / "p"


@pytest.fixture
def prod_project(production_project: Path, tmp_path: Path) -> Path:
    """A private copy of the production project."""
    return Path(shutil.copytree(production_project, tmp_path / "p"))


@pytest.fixture
def prod_ws(prod_project: Path) -> Iterator[Workspace]:
    with open_workspace(prod_project) as ws:
        yield ws
