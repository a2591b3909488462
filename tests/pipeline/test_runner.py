"""The pipeline end to end on a tiny workspace: every step recorded, skipping by input hash,
gate refusal never promotes, failures recorded."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the pipeline trains: needs the `train` extra")

from pathlib import Path

from pipeline.conftest import make_loop_ws
from visionloop.data.ingest import import_dataset
from visionloop.errors import PipelineBusyError, UsageError
from visionloop.pipeline.lease import acquire
from visionloop.pipeline.runner import run_pipeline
from visionloop.pipeline.runs import get_run, list_runs
from visionloop.pipeline.steps import STEP_NAMES
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.workspace import Workspace


def _statuses(run_id: int, ws: Workspace) -> dict[str, str]:
    return {s.name: s.status for s in get_run(ws, run_id).steps}


def test_full_run_then_rerun_is_a_noop(loop_ws: Workspace, loop_data: dict[str, Path]) -> None:
    import_dataset(loop_ws, loop_data["day"])
    events: list[tuple[str, str]] = []
    first = run_pipeline(loop_ws, hook=lambda k, i: events.append((k, i.get("name", ""))))
    assert first.status == "succeeded", first.error
    assert [s.name for s in first.steps] == list(STEP_NAMES)
    assert all(s.status == "done" for s in first.steps), _statuses(first.id, loop_ws)
    assert all(s.seconds is not None and s.seconds >= 0 for s in first.steps)
    assert first.outputs["promoted"] and not first.outputs["noop"]
    v = first.outputs["model_version"]
    assert resolve_alias(loop_ws, "production") == v
    mv = get_model(loop_ws, v)
    assert {"model.onnx", "export.json", "bundle.json"} <= set(mv.artifacts)
    assert ("step", "train") in events and any(k == "train.epoch" for k, _ in events)

    again = run_pipeline(loop_ws)
    assert again.status == "succeeded" and again.outputs["noop"]
    assert {s.status for s in again.steps} == {"skipped"}
    assert again.outputs["model_version"] == v  # outputs of the skipped steps are carried over
    assert len(list_runs(loop_ws)) == 2


def test_new_data_retrains_warm_from_production(loop_ws: Workspace, loop_data: dict[str, Path]) -> None:
    import_dataset(loop_ws, loop_data["day"])
    first = run_pipeline(loop_ws)
    import_dataset(loop_ws, loop_data["night"])
    second = run_pipeline(loop_ws)
    st = _statuses(second.id, loop_ws)
    assert st["snapshot"] == "done" and st["train"] == "done", st
    assert second.outputs["dataset"] != first.outputs["dataset"]
    assert second.outputs["warm_start"] == first.outputs["model_version"]
    assert second.outputs["model_version"] == first.outputs["model_version"] + 1


def test_a_model_failing_its_gate_is_registered_but_never_promoted(
    tmp_path: Path, loop_data: dict[str, Path]
) -> None:
    ws = make_loop_ws(tmp_path / "p", **{"min_map50_95 = 0.0": "min_map50_95 = 0.99"})
    import_dataset(ws, loop_data["day"])
    run = run_pipeline(ws)
    st = _statuses(run.id, ws)
    assert run.status == "succeeded" and not run.outputs["promoted"]
    assert st["gate"] == "done" and [st[s] for s in ("export", "bundle", "promote")] == ["skipped"] * 3
    assert "mAP50-95" in run.steps[-1].outputs["reason"]
    assert get_model(ws, run.outputs["model_version"]).status == "gate_failed"
    assert resolve_alias(ws, "production") is None


def test_a_failing_step_fails_the_run_with_its_error(loop_ws: Workspace, loop_data: dict[str, Path]) -> None:
    import_dataset(loop_ws, loop_data["day"])
    run = run_pipeline(loop_ws, train_overrides={"model": "no-such-architecture"})
    assert run.status == "failed" and "no-such-architecture" in (run.error or "")
    assert _statuses(run.id, loop_ws) == {"snapshot": "done", "train": "failed"}


def test_refusals(loop_ws: Workspace, loop_data: dict[str, Path]) -> None:
    empty = run_pipeline(loop_ws)
    assert empty.status == "failed" and "no labeled items" in (empty.error or "")
    with pytest.raises(UsageError, match="no pipeline step"):
        run_pipeline(loop_ws, until="deploy")
    assert acquire(loop_ws, "pipeline", "someone-else", 60)
    with pytest.raises(PipelineBusyError, match="someone-else"):
        run_pipeline(loop_ws)


def test_until_stops_after_a_step(loop_ws: Workspace, loop_data: dict[str, Path]) -> None:
    import_dataset(loop_ws, loop_data["day"])
    run = run_pipeline(loop_ws, until="evaluate")
    assert [s.name for s in run.steps] == ["snapshot", "train", "evaluate"]
    assert resolve_alias(loop_ws, "production") is None
