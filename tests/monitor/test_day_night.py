"""Drift is caught and only drift: v1 (trained on `day`) serves day traffic, then night traffic.

On two seeds: no day window raises an alert, the first night window is flagged, and its drift
signal becomes exactly one pipeline-run trigger of the agent. Then live accuracy on reviewed night
samples signals a degradation, `visionloop monitor report` writes its plots and the dashboard page
draws the windows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from _helpers import run_cli
from monitor.conftest import traffic
from visionloop.monitor.recorder import Recorder
from visionloop.monitor.signals import pending_signals
from visionloop.pipeline import runs
from visionloop.pipeline.agent import Agent
from visionloop.serve.follow import open_alias
from visionloop.serve.model import detect
from visionloop.serve.observe import Observation
from visionloop.store import schema
from visionloop.workspace import Workspace

pytestmark = pytest.mark.slow  # trains a model first (about a minute on 2 CPUs)

DAY_WINDOWS = 3
WINDOW = 200


class _Alerts:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def send(self, alert: dict[str, Any]) -> bool:
        self.alerts.append(alert)
        return True


def _serve(ws: Workspace, rec: Recorder, images: list[tuple[Any, Any]]) -> None:
    """What the server does per request: detect with the production bundle, hand it to the observer."""
    loaded = open_alias(ws, "production")
    threshold = float(loaded.bundle.manifest["score_threshold"])
    for image, _ in images:
        rec.observe(
            Observation(loaded.version, "production", image, detect(loaded, image, threshold), 0.01, 0.0)
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_night_is_flagged_within_one_window_and_day_never(mws: Workspace, seed: int) -> None:
    cfg = mws.settings.monitor.model_copy(update={"queue_size": 2000, "sample_rate": 0.0})
    alerts = _Alerts()
    rec = Recorder(mws, cfg, alerter=alerts, seed=seed, clock=lambda: 0.0).start()  # type: ignore[arg-type]
    _serve(mws, rec, traffic("day", DAY_WINDOWS * WINDOW, 100 + seed))
    _serve(mws, rec, traffic("night", WINDOW, 200 + seed))
    rec.stop()
    assert rec.dropped == 0
    assert [w.n for w in rec.closed] == [WINDOW] * (DAY_WINDOWS + 1)
    assert [w.drifted for w in rec.closed] == [False] * DAY_WINDOWS + [True]
    night = rec.closed[-1]
    assert {"brightness", "embedding"} <= set(night.report.flagged)
    assert len(alerts.alerts) == 1 and alerts.alerts[0]["window_id"] == night.id

    (trigger,) = pending_signals(mws)
    assert (trigger.kind, trigger.key, trigger.detail["window_id"]) == ("drift", "drift:v1", night.id)

    started: list[int] = []

    def attempt(run_id: int, _attempt_no: int) -> runs.PipelineRun:  # stands in for the pipeline's steps
        started.append(run_id)
        runs.finish_run(mws, run_id, "succeeded")
        return runs.get_run(mws, run_id)

    agent = Agent(mws, owner=f"test-{seed}")
    agent._attempt = attempt  # type: ignore[method-assign]
    agent.tick()
    agent.tick()  # the signal was taken: nothing new
    drift_runs = [r for r in runs.list_runs(mws) if r.trigger == "drift"]
    assert len(drift_runs) == 1 and drift_runs[0].idempotency_key == "drift:v1"
    assert started == [drift_runs[0].id]
    assert pending_signals(mws) == []


def _review_samples_with_truth(ws: Workspace, truth_by_oid: dict[str, Any]) -> int:
    """A person reviews every production sample: autolabel proposes, the reviewer draws the truth."""
    from visionloop.data.synth import SYNTH_CLASSES
    from visionloop.review.autolabel import autolabel
    from visionloop.review.queue import decide

    autolabel(ws)
    with ws.engine.connect() as conn:
        tasks = conn.execute(select(schema.review_tasks.c.id, schema.review_tasks.c.image_oid)).all()
    for task_id, oid in tasks:
        truth = truth_by_oid[oid]
        boxes = [
            {"class": SYNTH_CLASSES[int(c)], "box": [float(v) for v in box]}
            for box, c in zip(truth.xyxy, truth.class_id, strict=True)
        ]
        decide(ws, task_id, "edit", reviewer="reviewer", boxes=boxes)
    return len(tasks)


def test_live_accuracy_on_reviewed_samples_signals_degradation(
    mws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from visionloop.monitor.accuracy import live_accuracy, reviewed_samples
    from visionloop.store.blobs import sha256_hex

    cfg = mws.settings.monitor.model_copy(
        update={"queue_size": 2000, "sample_rate": 0.25, "window_size": 100}
    )
    rec = Recorder(mws, cfg, alerter=_Alerts(), seed=5, clock=lambda: 0.0)  # type: ignore[arg-type]
    night = traffic("night", 100, 300)
    _serve(mws, rec, night)
    rec.stop()
    truth_by_oid = {}
    for image, truth in night:  # the recorder stores each sample as JPEG quality 95: the same bytes
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=95)
        truth_by_oid[sha256_hex(buf.getvalue())] = truth
    stored = rec.closed[0].samples
    assert 10 <= stored <= 45
    assert _review_samples_with_truth(mws, truth_by_oid) == stored
    assert len(reviewed_samples(mws)) == stored

    with mws.engine.begin() as conn:  # the tiny model's own test score is tiny: make the bar explicit
        conn.execute(update(schema.model_versions).values(metrics={"map50_95": 0.9, "map50": 0.95}))
    events: list[str] = []
    agent = Agent(mws, hook=lambda kind, _info: events.append(kind))
    assert agent.measure_live_accuracy() and events == ["live_accuracy"]  # the agent's round measures it
    assert not agent.measure_live_accuracy()  # and not again until more samples are reviewed
    res = live_accuracy(mws, alerter=_Alerts())  # type: ignore[arg-type]
    assert res.n_images == stored and res.metrics["map50_95"] < 0.8
    assert res.degraded and res.signal == "degradation:v1"
    kinds = {t.kind: t.key for t in pending_signals(mws)}
    assert kinds == {"drift": "drift:v1", "degradation": "degradation:v1"}

    out = tmp_path / "plots"
    code, text, err = run_cli(
        capsys, monkeypatch, "-w", str(mws.root), "monitor", "report", "--out", str(out), "--json"
    )
    assert code == 0, err
    doc = json.loads(text)
    assert [w["drifted"] for w in doc["windows"]] == [True]
    assert {s["key"] for s in doc["signals"]} == {"drift:v1", "degradation:v1"}
    assert doc["accuracy"][0]["metrics"]["degraded"] is True
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.png",
        "drift.png",
        "inputs.png",
        "predictions.png",
    ]
    assert all((out / n).read_bytes()[:4] == b"\x89PNG" for n in ("drift.png", "accuracy.png"))
    code, text, _ = run_cli(capsys, monkeypatch, "-w", str(mws.root), "monitor", "report", "--no-plots")
    assert code == 0 and "monitoring: the latest 1 window(s)" in text and "live accuracy" in text
    code, text, _ = run_cli(capsys, monkeypatch, "-w", str(mws.root), "monitor", "accuracy", "--json")
    assert code == 0 and '"degraded": true' in text

    pytest.importorskip("jinja2", reason="the dashboard needs the `ui` extra")
    from fastapi.testclient import TestClient

    from visionloop.ui.access import SESSION_COOKIE
    from visionloop.ui.app import create_app
    from visionloop.ui.auth import create_session, create_user

    viewer = create_user(mws, "watcher", "viewer", "correct horse battery")
    client = TestClient(create_app(mws), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, create_session(mws, viewer)[0])
    page = client.get("/monitor")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 4
    assert "<polyline" in page.text and "drifted" in page.text and "degradation:v1" in page.text
    assert 'href="/monitor" class="active"' in page.text
