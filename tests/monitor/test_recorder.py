"""The recorder: observe never blocks (a full queue drops and counts), windows land as rows with their
features, drift makes one signal and an alert, samples become unlabeled items, stop flushes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from visionloop.config import MonitorConfig
from visionloop.data.synth import SYNTH_CLASSES, render_scene
from visionloop.monitor.alerts import Alerter
from visionloop.monitor.features import FeatureTable, build_table, prediction_stats, summarize_image
from visionloop.monitor.recorder import Recorder
from visionloop.monitor.reference import Reference
from visionloop.serve.observe import Observation
from visionloop.store import schema
from visionloop.workspace import Workspace, init_workspace


class _Alerts(Alerter):
    def __init__(self) -> None:
        super().__init__("")
        self.alerts: list[dict[str, Any]] = []

    def send(self, alert: dict[str, Any]) -> bool:
        self.alerts.append(alert)
        return False


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with init_workspace(tmp_path, classes=list(SYNTH_CLASSES)) as w:
        yield w


def _images(domain: str, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [render_scene(rng, domain, 96)[0] for _ in range(n)]


@pytest.fixture(scope="module")
def day_reference() -> Reference:
    images = _images("day", 400, 1)  # references are hundreds of images: a small one is a noisy yardstick
    table = build_table(
        [summarize_image(i) for i in images],
        [prediction_stats([0.9], [0], 4, 0.25)] * len(images),
        SYNTH_CLASSES,
    )
    return Reference("d" * 64, 1, 0.25, table)


def _obs(image: Any, version: int = 1, route: str = "production", at: float = 1_700_000_000.0) -> Observation:
    return Observation(
        version,
        route,
        image,
        [{"class": "disc", "class_id": 0, "score": 0.9, "box": [1, 2, 30, 40]}],
        0.01,
        at,
    )


def test_a_full_queue_drops_and_counts_and_never_blocks(ws: Workspace, day_reference: Reference) -> None:
    cfg = MonitorConfig(queue_size=2, window_size=10, min_window=10, sample_rate=0)
    rec = Recorder(ws, cfg, references=lambda _v: day_reference, alerter=_Alerts())  # thread not started
    image = _images("day", 1, 0)[0]
    t0 = time.perf_counter()
    for _ in range(500):
        rec.observe(_obs(image))
    assert time.perf_counter() - t0 < 0.5  # nothing waited for a consumer
    assert rec.dropped == 498 and rec.status()["queued"] == 2
    rec.stop()  # processes what is queued and flushes the open window
    (closed,) = rec.closed
    assert (closed.n, closed.dropped, closed.drifted) == (2, 498, False)
    assert closed.report.skipped and "2 predictions" in closed.report.skipped
    with ws.engine.connect() as conn:
        row = conn.execute(select(schema.monitor_windows)).one()
    assert (row.n, row.dropped, row.route, row.drifted) == (2, 498, "production", 0)


def test_observer_errors_stay_in_the_recorder(ws: Workspace, day_reference: Reference) -> None:
    rec = Recorder(ws, MonitorConfig(sample_rate=0), references=lambda _v: day_reference).start()
    bad = Observation(1, "production", "not an image", [], 0.0, 0.0)  # type: ignore[arg-type]
    rec.observe(bad)
    rec.observe(_obs(_images("day", 1, 0)[0]))
    rec.stop()
    assert rec.errors == 1 and rec.processed == 1


def test_windows_on_the_thread_with_samples_and_flush(ws: Workspace, day_reference: Reference) -> None:
    cfg = MonitorConfig(queue_size=1000, window_size=200, min_window=50, sample_rate=0.1)
    clock = lambda: 1_700_000_000.0 + 1000  # noqa: E731  (the windows' own times: no time-based close)
    rec = Recorder(
        ws, cfg, references=lambda _v: day_reference, alerter=_Alerts(), clock=clock, seed=3
    ).start()
    for i, image in enumerate(_images("day", 230, 7)):
        rec.observe(_obs(image, at=1_700_000_000.0 + i))
    rec.observe(_obs(_images("day", 1, 8)[0], version=2, route="canary"))
    rec.stop()
    assert [(c.model_version, c.route, c.n) for c in rec.closed] == [
        (1, "production", 200),
        (1, "production", 30),
        (2, "canary", 1),
    ]
    assert not any(c.drifted for c in rec.closed)
    stored = sum(c.samples for c in rec.closed)
    assert 8 <= stored <= 40
    with ws.engine.connect() as conn:
        windows = conn.execute(select(schema.monitor_windows).order_by(schema.monitor_windows.c.id)).all()
        items = conn.execute(
            select(
                schema.items.c.status, schema.items.c.name, schema.imports.c.source, schema.imports.c.format
            ).join(schema.imports, schema.items.c.import_id == schema.imports.c.id)
        ).all()
    first = windows[0]
    assert first.reference_id == "d" * 64 and first.summary["brightness"]["mean"] > 0.3
    assert first.summary["reference"]["brightness"] == pytest.approx(
        float(day_reference.table.column("brightness").mean()), abs=1e-5
    )
    assert first.summary["class_mix"]["disc"] == 1.0
    assert first.drift["drifted"] is False and "embedding" in first.drift["tests"]
    table, meta = FeatureTable.from_npz(ws.blobs.get(first.features_oid))
    assert len(table) == 200 and meta["route"] == "production"
    assert str(first.started_at)[:19] == "2023-11-14 22:13:20"
    assert len(items) == stored
    assert {(s, src, fmt) for s, _, src, fmt in items} <= {
        ("unlabeled", "production:v1", "production"),
        ("unlabeled", "production:v2", "production"),
    }
    assert all(name.startswith("production:v") and name.endswith(".jpg") for _, name, _, _ in items)


def test_night_window_drifts_signals_once_and_alerts(ws: Workspace, day_reference: Reference) -> None:
    cfg = MonitorConfig(window_size=200, min_window=50, sample_rate=0)
    alerts = _Alerts()
    rec = Recorder(ws, cfg, references=lambda _v: day_reference, alerter=alerts)
    for image in _images("day", 200, 11) + _images("night", 400, 12):
        rec.process(_obs(image))
    assert [c.drifted for c in rec.closed] == [False, True, True]
    assert [c.signal for c in rec.closed] == [None, "drift:v1", "drift:v1"]
    with ws.engine.connect() as conn:
        signals = conn.execute(select(schema.monitor_signals)).all()
    assert len(signals) == 1 and signals[0].key == "drift:v1" and signals[0].window_id == rec.closed[1].id
    assert {"brightness", "embedding"} <= set(signals[0].detail["flagged"])
    assert [a["alert"] for a in alerts.alerts] == ["drift"]  # sustained drift: one alert when it starts
    assert alerts.alerts[0]["signal"] == "drift:v1" and alerts.alerts[0]["window_id"] == rec.closed[1].id
    for image in _images("day", 200, 16) + _images("night", 200, 17):  # it ends, then starts again
        rec.process(_obs(image))
    assert [c.drifted for c in rec.closed[3:]] == [False, True]
    assert len(alerts.alerts) == 2 and "already signaled" in alerts.alerts[1]["signal"]


def test_shadow_drift_alerts_without_a_signal(ws: Workspace, day_reference: Reference) -> None:
    alerts = _Alerts()
    rec = Recorder(
        ws,
        MonitorConfig(window_size=100, min_window=50, sample_rate=0),
        references=lambda _v: day_reference,
        alerter=alerts,
    )
    for image in _images("night", 100, 13):
        rec.process(_obs(image, route="shadow"))
    assert rec.closed[0].drifted and rec.closed[0].signal is None
    assert alerts.alerts and alerts.alerts[0]["route"] == "shadow"


def test_missing_reference_records_the_window_without_tests(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def none(_v: int) -> Reference:
        raise RuntimeError("no bundle")

    from visionloop.registry import versions

    rec = Recorder(ws, MonitorConfig(window_size=10, min_window=10, sample_rate=0), references=none)
    monkeypatch.setattr(
        versions, "get_model", lambda _ws, _v: type("M", (), {"classes": list(SYNTH_CLASSES)})()
    )
    for image in _images("day", 10, 14):
        rec.process(_obs(image))
    (closed,) = rec.closed
    assert not closed.drifted and closed.report.skipped == "no reference for v1"


def test_a_window_also_closes_after_window_max_s(ws: Workspace, day_reference: Reference) -> None:
    now = [1_700_000_000.0]
    cfg = MonitorConfig(window_size=1000, min_window=50, window_max_s=60, sample_rate=0)
    rec = Recorder(ws, cfg, references=lambda _v: day_reference, clock=lambda: now[0])
    images = _images("day", 60, 15)
    for i, image in enumerate(images[:40]):
        rec.process(_obs(image, at=now[0] + i))
    now[0] += 120
    rec._close_due()  # too few predictions yet: it stays open
    assert rec.closed == []
    for image in images[40:]:
        rec.process(_obs(image, at=now[0]))
    rec._close_due()
    assert [c.n for c in rec.closed] == [60]
