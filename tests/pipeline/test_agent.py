"""The agent: threshold trigger, one run per condition even with two agents, retries with back-off
(never a tight loop), and a clean stop on SIGTERM."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the agent's pipeline trains: needs the `train` extra")

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.conftest import make_loop_ws
from visionloop.data.ingest import import_dataset
from visionloop.pipeline.agent import Agent
from visionloop.pipeline.runs import get_run, list_runs
from visionloop.workspace import Workspace, open_workspace, utcnow


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def test_failed_runs_are_retried_with_backoff_then_given_up(
    loop_ws: Workspace, loop_data: dict[str, Path]
) -> None:
    import_dataset(loop_ws, loop_data["day"])
    clock = Clock()
    agent = Agent(loop_ws, clock=clock, train_overrides={"model": "no-such-architecture"})
    first = agent.tick()
    assert first is not None and first.trigger == "threshold" and first.status == "retry_wait"
    assert first.attempts == 1 and first.next_attempt_at is not None
    wait = (first.next_attempt_at - utcnow()).total_seconds()
    assert 55 < wait <= 60  # backoff_s = 60 in the tiny settings
    assert agent.tick() is None  # not yet due, and the trigger's key is taken: no tight loop
    clock.offset = timedelta(seconds=61)
    second = agent.tick()
    assert second is not None and second.id == first.id and second.attempts == 2
    assert second.status == "retry_wait"
    assert (second.next_attempt_at - utcnow()).total_seconds() > 110  # doubled
    clock.offset = timedelta(seconds=200)
    third = agent.tick()
    assert third is not None and third.status == "failed" and third.attempts == 3
    assert "no-such-architecture" in (third.error or "")
    clock.offset = timedelta(seconds=1000)
    assert agent.tick() is None
    assert [r.id for r in list_runs(loop_ws)] == [first.id]
    failed_steps = [s for s in get_run(loop_ws, first.id).steps if s.status == "failed"]
    assert [s.attempt for s in failed_steps] == [1, 2, 3]


def test_below_threshold_nothing_happens(tmp_path: Path, loop_data: dict[str, Path]) -> None:
    ws = make_loop_ws(tmp_path / "p", **{"min_new_items = 10": "min_new_items = 1000"})
    import_dataset(ws, loop_data["day"])
    assert Agent(ws).tick() is None and list_runs(ws) == []


def _agent(root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "visionloop", "-w", str(root), "agent", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _wait(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_two_agents_started_together_make_exactly_one_run(tmp_path: Path, loop_data: dict[str, Path]) -> None:
    ws = make_loop_ws(tmp_path / "p")
    import_dataset(ws, loop_data["day"])
    root = ws.root
    agents = [_agent(root), _agent(root)]
    try:
        _wait(lambda: any(r.status == "succeeded" for r in list_runs(open_workspace(root))), 240)
        time.sleep(3)  # both agents keep looking: the condition is spent, nothing more starts
    finally:
        for a in agents:
            a.send_signal(signal.SIGTERM)
        results = [a.communicate(timeout=60) for a in agents]
    assert [a.returncode for a in agents] == [0, 0], results
    runs = list_runs(open_workspace(root))
    assert len(runs) == 1 and runs[0].status == "succeeded" and runs[0].outputs["promoted"]
    assert all("agent stopped" in err for _, err in results)


def test_sigterm_mid_training_stops_cleanly_and_marks_the_run_interrupted(
    tmp_path: Path, loop_data: dict[str, Path]
) -> None:
    ws = make_loop_ws(tmp_path / "p", **{"epochs = 1": "epochs = 500"})
    import_dataset(ws, loop_data["day"])
    root = ws.root
    agent = _agent(root)

    def training() -> bool:
        runs = list_runs(open_workspace(root))
        return bool(runs) and any(s.name == "train" and s.status == "running" for s in runs[0].steps)

    _wait(training, 120)
    time.sleep(1)
    t0 = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    assert time.monotonic() - t0 < 30
    run = list_runs(open_workspace(root))[0]
    assert run.status == "interrupted" and "asked to stop" in (run.error or "")
    assert [s.status for s in run.steps] == ["done", "failed"]
    assert "agent stopped" in err


def test_the_agent_proposes_labels_for_new_unlabeled_images(
    loop_ws: Workspace, loop_data: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    from visionloop.pipeline.runner import run_pipeline
    from visionloop.review.queue import queue_stats

    import_dataset(loop_ws, loop_data["day"])
    assert run_pipeline(loop_ws).outputs["promoted"]
    plain = tmp_path / "incoming"
    plain.mkdir()
    for jpg in sorted((loop_data["night"] / "images").rglob("*.jpg"))[:5]:
        shutil.copy2(jpg, plain / jpg.name)
    assert import_dataset(loop_ws, plain).unlabeled == 5
    events: list[str] = []
    assert Agent(loop_ws, hook=lambda k, _i: events.append(k)).tick() is None  # 5 < threshold: no run
    assert queue_stats(loop_ws)["pending"] == 5 and "autolabel" in events
