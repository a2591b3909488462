"""The recorder process: the server side only packs and enqueues (a full queue drops and counts), a
child process on the same workspace records the windows, samples and drops, and stops cleanly."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.conftest import traffic
from visionloop.config import MonitorConfig
from visionloop.monitor.process import RecorderProcess
from visionloop.serve.observe import Observation
from visionloop.store import schema
from visionloop.workspace import Workspace


def _obs(image: Any, at: float) -> Observation:
    detections = [{"class": "disc", "class_id": 0, "score": 0.8, "box": [1, 2, 30, 40]}]
    return Observation(1, "production", image, detections, 0.01, at)


def _windows(ws: Workspace) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(schema.monitor_windows).order_by(schema.monitor_windows.c.id)))


def test_the_child_records_windows_and_samples(mws: Workspace) -> None:
    cfg = MonitorConfig(window_size=10, min_window=10, sample_rate=1.0, queue_size=64)
    rec = RecorderProcess(mws, cfg).start(warm=[1])
    images = [im for im, _ in traffic("day", 25, seed=3)]
    for i, image in enumerate(images):
        rec.observe(_obs(image, 1_700_000_000.0 + i))
    rec.stop()
    status = rec.status()
    assert status["processed"] == 25 and status["dropped"] == 0 and status["errors"] == 0
    assert status["windows"] == 3 and not status["alive"]
    rows = _windows(mws)
    assert [r.n for r in rows] == [10, 10, 5]
    assert all(r.model_version == 1 and r.route == "production" for r in rows)
    assert rows[0].drift["tests"] and rows[2].drift.get("skipped")  # the short flushed one: no tests
    with mws.engine.connect() as conn:
        sampled = conn.scalar(
            select(func.count()).select_from(schema.items).where(schema.items.c.name.like("production:v1/%"))
        )
    assert sampled == 25  # every image sampled, its pixels sent to the child and stored as JPEG


def test_a_full_queue_drops_counts_and_reaches_the_window(mws: Workspace) -> None:
    cfg = MonitorConfig(window_size=10, min_window=10, sample_rate=0, queue_size=32)  # one batch
    rec = RecorderProcess(mws, cfg)  # not started yet: nothing reads the queue
    image = traffic("day", 1, seed=4)[0][0]
    t0 = time.perf_counter()
    for i in range(100):
        rec.observe(_obs(image, 1_700_000_000.0 + i))
    assert time.perf_counter() - t0 < 2.0  # never waits for the child
    assert rec.dropped >= 32  # the first batch of 32 fits, the next ones find the queue full
    rec.start()
    rec.stop()
    dropped = rec.dropped
    rows = _windows(mws)
    assert sum(r.n for r in rows) == 100 - dropped == rec.status()["processed"]
    assert sum(r.dropped for r in rows) == dropped  # the drop count is sent before the stop


def test_observe_never_raises_and_stop_without_start_ends(mws: Workspace) -> None:
    rec = RecorderProcess(mws, MonitorConfig(queue_size=4))
    rec.observe(Observation(1, "production", "not an image", [], 0.0, 0.0))  # type: ignore[arg-type]
    assert rec.status()["errors"] == 1 and rec.status()["received"] == 0
    rec.stop()
    assert not rec.alive


def test_a_dead_recorder_process_is_reported_once_and_predictions_drop(
    mws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    rec = RecorderProcess(mws, MonitorConfig(queue_size=32, sample_rate=0)).start()
    rec._process.kill()  # the child dies (out of memory, a bug): the server must go on
    rec._process.join(10)
    image = traffic("day", 1, seed=5)[0][0]
    with caplog.at_level(logging.ERROR, logger="visionloop.monitor"):
        for i in range(100):
            rec.observe(_obs(image, 1_700_000_000.0 + i))
    assert rec.dropped >= 64 and not rec.status()["alive"]
    assert sum("recorder process ended" in r.getMessage() for r in caplog.records) == 1
    rec.stop()
