"""The flywheel on real data (BCCD): withheld labels, v1, autolabel, a scripted reviewer through the
review API, two agents → exactly one retrain, and v2 beats v1 on the test split."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the flywheel trains: needs the `train` extra")

from visionloop.data.ingest import import_dataset
from visionloop.pipeline.agent import Agent
from visionloop.pipeline.runner import run_pipeline
from visionloop.pipeline.runs import list_runs
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.review.autolabel import autolabel
from visionloop.review.flywheel import REVIEWER, review_with_truth, withhold_voc
from visionloop.review.queue import queue_stats
from visionloop.store import schema
from visionloop.workspace import init_workspace, open_workspace


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_flywheel_on_bccd(tmp_path: Path, bccd: Path) -> None:
    held = withhold_voc(bccd, tmp_path / "bccd", 0.6, seed=0)
    assert len(held.withheld) == 123  # 60% of BCCD's 205 training images
    first = init_workspace(tmp_path / "p")
    cfg = first.root / "visionloop.toml"
    first.close()
    text = cfg.read_text()
    for old, new in {
        "keep_source_splits = false": "keep_source_splits = true",
        "min_new_items = 100": "min_new_items = 100",
        "time_budget_min = 0": "time_budget_min = 1.0",
        "epochs = 30": "epochs = 60",
    }.items():
        text = text.replace(old, new)
    cfg.write_text(text)
    ws = open_workspace(cfg.parent)
    imported = import_dataset(ws, held.root)
    assert imported.unlabeled == 123

    v1 = run_pipeline(ws, actor="test").outputs["model_version"]
    proposed = autolabel(ws)
    assert proposed.proposed == 123 and proposed.tasks_created == 123
    assert review_with_truth(ws, held.truth) == 123
    assert queue_stats(ws)["pending"] == 0
    from sqlalchemy import func, select

    with ws.engine.connect() as conn:
        reviewed = conn.execute(
            select(func.count())
            .select_from(schema.labels)
            .where(schema.labels.c.origin == "review", schema.labels.c.author == REVIEWER)
        ).scalar_one()
    assert reviewed == 123

    results: list[Any] = []
    agents = [Agent(ws), Agent(ws)]
    threads = [threading.Thread(target=lambda a=a: results.append(a.tick())) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1
    assert [r.trigger for r in list_runs(ws)] == ["threshold", "manual"]
    v2 = resolve_alias(ws, "production")
    assert v2 == v1 + 1
    assert get_model(ws, v2).metrics["map50_95"] > get_model(ws, v1).metrics["map50_95"]
