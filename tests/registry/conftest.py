"""Model versions without training: a dataset version, a run row and a weights blob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from visionloop.data.ingest import import_dataset
from visionloop.data.versions import snapshot
from visionloop.registry.versions import register_model
from visionloop.store import schema
from visionloop.workspace import Workspace, utcnow

CLASSES = ["disc", "square", "triangle", "cross"]


def make_metrics(map50_95: float = 0.5, **per_class_ap: float) -> dict[str, Any]:
    """A metrics dict as the evaluation module produces it."""
    aps = {c: per_class_ap.get(c, map50_95) for c in CLASSES}
    return {
        "map50_95": map50_95,
        "map50": min(1.0, map50_95 + 0.3),
        "map75": map50_95,
        "ar100": min(1.0, map50_95 + 0.1),
        "n_images": 4,
        "per_class": {
            c: {"ap": ap, "ap50": min(1.0, ap + 0.3), "recall": 0.8, "n_gt": 5} for c, ap in aps.items()
        },
    }


def new_run(ws: Workspace, dataset_version_id: str) -> int:
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(schema.runs).values(
                kind="train",
                status="finished",
                dataset_version_id=dataset_version_id,
                config={},
                environment={},
                metrics={},
                artifacts={},
                created_at=utcnow(),
            )
        )
        return int(res.inserted_primary_key[0])


class Models:
    """Registers model versions on one dataset version and run: ``models(created_by=…, metrics=…)``."""

    metrics = staticmethod(make_metrics)

    def __init__(self, ws: Workspace, data: Path) -> None:
        self.ws = ws
        import_dataset(ws, data)
        self.dataset_version_id = snapshot(ws, "seed", keep_splits=True)[0].id
        self.run_id = new_run(ws, self.dataset_version_id)
        self.weights_oid = ws.blobs.put_bytes(b"weights")

    def __call__(
        self,
        *,
        created_by: str | None = "trainer",
        metrics: dict[str, Any] | None = None,
        dataset_version_id: str | None = None,
        artifacts: dict[str, str] | None = None,
    ) -> int:
        return register_model(
            self.ws,
            run_id=self.run_id,
            dataset_version_id=dataset_version_id or self.dataset_version_id,
            architecture="ssdlite",
            weights_oid=self.weights_oid,
            classes=CLASSES,
            imgsz=96,
            metrics=metrics if metrics is not None else make_metrics(),
            artifacts=artifacts or {},
            lineage={"run_id": self.run_id},
            created_by=created_by,
        )


@pytest.fixture
def models(ws: Workspace, synth_day: Path) -> Models:
    return Models(ws, synth_day)


@pytest.fixture
def any_models(any_ws: Workspace, synth_day: Path) -> Models:
    return Models(any_ws, synth_day)
