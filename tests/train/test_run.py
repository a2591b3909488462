from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from sqlalchemy import select

from visionloop.errors import DataError, UsageError
from visionloop.store import schema
from visionloop.train.config import TrainConfig
from visionloop.train.run import run_dir, train


def _runs(ws) -> list:
    with ws.engine.connect() as conn:
        return conn.execute(select(schema.runs).order_by(schema.runs.c.id)).all()


def test_train_registers_a_model_with_lineage(tiny_ws, tiny_cfg) -> None:
    steps: list[float] = []
    res = train(
        tiny_ws,
        "latest",
        tiny_cfg,
        hook=lambda k, i: steps.append(i["loss"]) if k == "step" else None,
        created_by="ana",
    )
    assert res.model_version == 1
    assert steps and all(s > 0 for s in steps)
    (run,) = _runs(tiny_ws)
    assert run.status == "finished" and run.config["model"] == "ssdlite"
    assert run.environment["packages"]["torch"] and run.environment["seed"] == 0
    from visionloop.registry.versions import get_model

    mv = get_model(tiny_ws, 1)
    assert mv.lineage["run"] == run.id and mv.lineage["dataset_version"] == run.dataset_version_id
    assert mv.created_by == "ana"
    for name in ("weights", "pr_curves.png", "confusion_matrix.png"):
        assert tiny_ws.blobs.has(mv.artifacts[name])
    assert set(st_load(tiny_ws.blobs.get(mv.weights_oid)))  # safetensors, not a pickle
    assert 0.0 <= res.metrics["map50"] <= 1.0 and set(res.metrics["per_class"]) <= {
        "disc",
        "square",
        "triangle",
        "cross",
    }


def test_same_seed_same_weights_on_cpu(tiny_ws, tiny_cfg) -> None:
    cfg = tiny_cfg.model_copy(update={"epochs": 1, "device": "cpu"})
    a = train(tiny_ws, "latest", cfg, register=False)
    b = train(tiny_ws, "latest", cfg, register=False)
    wa = (run_dir(tiny_ws, a.run_id) / "best.safetensors").read_bytes()
    wb = (run_dir(tiny_ws, b.run_id) / "best.safetensors").read_bytes()
    assert wa == wb


class _Stop(Exception):
    pass


def test_resume_restores_optimizer_scheduler_and_rng(tiny_ws, tiny_cfg) -> None:
    """An interrupted run resumed from its checkpoint ends exactly like one that never stopped."""
    cfg = tiny_cfg.model_copy(update={"epochs": 2, "device": "cpu", "patience": 5})
    straight = train(tiny_ws, "latest", cfg, register=False)

    def stop_after_first(kind: str, info: dict) -> None:
        if kind == "epoch" and info["epoch"] == 1:
            raise _Stop()

    with pytest.raises(_Stop):
        train(tiny_ws, "latest", cfg, hook=stop_after_first, register=False)
    interrupted = _runs(tiny_ws)[-1]
    assert interrupted.status == "failed"
    resumed = train(tiny_ws, resume=interrupted.id, register=False)
    assert resumed.run_id == interrupted.id and resumed.fit["epochs_done"] == 2
    last_a = (run_dir(tiny_ws, straight.run_id) / "last.pt").read_bytes()
    from visionloop.train.checkpoint import load_checkpoint

    ca = load_checkpoint(run_dir(tiny_ws, straight.run_id) / "last.pt")
    cb = load_checkpoint(run_dir(tiny_ws, resumed.run_id) / "last.pt")
    assert last_a
    for key, tensor in ca["model"].items():
        assert (tensor == cb["model"][key]).all(), key
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"]
    state_a, state_b = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    for k, entry in state_a.items():  # AdamW: step, exp_avg, exp_avg_sq; SGD: momentum_buffer
        for name, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[k][name])), (k, name)


_RUNNER = """
import sys
from visionloop.workspace import open_workspace
from visionloop.train.config import TrainConfig
from visionloop.train.run import train
cfg = TrainConfig(model="ssdlite", epochs=3, imgsz=96, batch_size=6, augment="light", device="cpu", patience=9)
train(open_workspace(sys.argv[1]), "latest", cfg)
"""


def test_kill_9_then_resume_finishes_and_registers(tiny_ws) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(tiny_ws.root)])
    checkpoint = tiny_ws.root / "runs" / "1" / "last.pt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not checkpoint.exists() and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run,) = _runs(tiny_ws)
    assert run.status == "running", "killed runs stay as they were"
    res = train(tiny_ws, resume=run.id)
    assert res.fit["epochs_done"] == 3 and res.model_version == 1
    from visionloop.evaluate.runner import load_model

    _model, mv = load_model(tiny_ws, 1)
    assert mv.run_id == run.id


def test_resume_errors(tiny_ws, tiny_cfg) -> None:
    with pytest.raises(UsageError, match="no run 42"):
        train(tiny_ws, resume=42)
    res = train(tiny_ws, "latest", tiny_cfg.model_copy(update={"epochs": 1}), register=False)
    with pytest.raises(UsageError, match="already finished"):
        train(tiny_ws, resume=res.run_id)


def test_a_version_without_val_images_is_a_clear_error(ws, tmp_path: Path) -> None:
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot

    data = tmp_path / "d"
    generate(data, images=3, seed=1, size=64, val_fraction=0.0, test_fraction=0.0)
    import_dataset(ws, data)
    snapshot(ws, "train only", keep_splits=True)
    with pytest.raises(DataError, match="has 3 train and 0 val images"):
        train(ws, "latest", TrainConfig(epochs=1, imgsz=64))
    assert _runs(ws)[-1].status == "failed"


def test_a_time_budget_plans_the_epochs_that_fit(tiny_ws, tiny_cfg) -> None:
    cfg = tiny_cfg.model_copy(update={"epochs": 4, "time_budget_min": 0.0001})
    res = train(tiny_ws, "latest", cfg, register=False)
    assert res.fit["epochs_done"] == 1
    assert res.fit["stopped"] == "1 of 4 epochs fit the time budget of 0.0001 min"


def test_pretrained_weights_load_from_a_local_file(tiny_ws, tiny_cfg, tmp_path: Path) -> None:
    first = train(tiny_ws, "latest", tiny_cfg.model_copy(update={"epochs": 1}), register=False)
    weights = tmp_path / "pretrained.safetensors"
    weights.write_bytes((run_dir(tiny_ws, first.run_id) / "best.safetensors").read_bytes())
    seen: list[dict] = []
    cfg = tiny_cfg.model_copy(update={"epochs": 1, "weights": str(weights)})
    train(
        tiny_ws, "latest", cfg, register=False, hook=lambda k, i: seen.append(i) if k == "weights" else None
    )
    assert seen and seen[0]["loaded"] == seen[0]["total"] > 0
    with pytest.raises(DataError, match="none of the pretrained weights fit"):
        other = tmp_path / "other.safetensors"
        from safetensors.torch import save_file

        save_file({"unrelated.weight": torch.zeros(3)}, str(other))
        train(tiny_ws, "latest", cfg.model_copy(update={"weights": str(other)}), register=False)
