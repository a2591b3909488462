"""Reading monitoring back: the latest windows and live-accuracy rows (for the CLI and the dashboard)
and PNG plots of them over time (matplotlib, imported only when plots are asked for: it ships with
the ``train`` extra, not with serving)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionloop.errors import UsageError
from visionloop.store import schema
from visionloop.workspace import Workspace, aware


@dataclass(frozen=True)
class WindowRecord:
    id: int
    model_version: int
    route: str
    started_at: datetime
    ended_at: datetime
    n: int
    dropped: int
    reference_id: str | None
    summary: dict[str, Any]
    drift: dict[str, Any]
    drifted: bool

    def stat(self, name: str) -> float | None:
        value = self.summary.get(name, {})
        return float(value["mean"]) if isinstance(value, dict) and "mean" in value else None

    def test(self, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.drift.get("tests", {}).get(name)
        return found

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["started_at"], d["ended_at"] = self.started_at.isoformat(), self.ended_at.isoformat()
        return d


@dataclass(frozen=True)
class AccuracyRecord:
    id: int
    model_version: int
    n_images: int
    metrics: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def latest_windows(ws: Workspace, last: int = 50, route: str | None = None) -> list[WindowRecord]:
    """The ``last`` windows, oldest first (the order charts draw them in)."""
    if last < 1:
        raise UsageError(f"--last must be at least 1, not {last}", fix="pass e.g. --last 50")
    t = schema.monitor_windows
    q = select(t).order_by(t.c.id.desc()).limit(last)
    if route:
        q = q.where(t.c.route == route)
    with ws.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        WindowRecord(
            r.id,
            r.model_version,
            r.route,
            aware(r.started_at),
            aware(r.ended_at),
            r.n,
            r.dropped,
            r.reference_id,
            r.summary or {},
            r.drift or {},
            bool(r.drifted),
        )
        for r in reversed(rows)
    ]


def accuracy_history(ws: Workspace, last: int = 50) -> list[AccuracyRecord]:
    """The ``last`` live-accuracy measurements, oldest first."""
    t = schema.monitor_accuracy
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.id.desc()).limit(last)).all()
    return [
        AccuracyRecord(r.id, r.model_version, r.n_images, r.metrics, aware(r.created_at))
        for r in reversed(rows)
    ]


def signals(ws: Workspace, last: int = 20) -> list[dict[str, Any]]:
    """The latest monitoring signals, newest first."""
    t = schema.monitor_signals
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.id.desc()).limit(last)).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "key": r.key,
            "model_version": r.model_version,
            "window_id": r.window_id,
            "created_at": aware(r.created_at).isoformat(),
        }
        for r in rows
    ]


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def write_plots(ws: Workspace, out: Path, last: int = 50) -> list[Path]:
    """PNG charts of the latest windows (drift, input statistics, predictions) and live accuracy."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "plots need matplotlib, which comes with the `train` extra",
            fix="install visionloop[train], or run `visionloop monitor report --no-plots`",
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    windows = latest_windows(ws, last)
    ids = [w.id for w in windows]
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    mmd = [(w.id, (w.test("embedding") or {}).get("p_value")) for w in windows]
    pts = [(i, p) for i, p in mmd if p is not None]
    ax.plot([i for i, _ in pts], [p for _, p in pts], "o-", label="embedding MMD p-value")
    ax.axhline(
        ws.settings.monitor.alpha, color="red", linestyle="--", label=f"α = {ws.settings.monitor.alpha}"
    )
    for w in windows:
        if w.drifted:
            ax.axvspan(w.id - 0.5, w.id + 0.5, color="red", alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("window")
    ax.set_title("drift per window (shaded: drifted)")
    ax.legend(loc="lower left")
    save(fig, "drift.png")

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, name in zip(axes, ("brightness", "contrast", "sharpness"), strict=True):
        ax.plot(ids, [w.stat(name) for w in windows], "o-", label="window mean")
        refs = [w.summary.get("reference", {}).get(name) for w in windows]
        ax.plot(ids, refs, "--", color="gray", label="reference")
        ax.set_title(name)
        ax.set_xlabel("window")
    axes[0].legend()
    save(fig, "inputs.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, name in zip(axes, ("boxes", "score_mean"), strict=True):
        ax.plot(ids, [w.stat(name) for w in windows], "o-", label="window mean")
        ax.plot(
            ids,
            [w.summary.get("reference", {}).get(name) for w in windows],
            "--",
            color="gray",
            label="reference",
        )
        ax.set_title("boxes per image" if name == "boxes" else "mean score")
        ax.set_xlabel("window")
    axes[0].legend()
    save(fig, "predictions.png")

    acc = accuracy_history(ws, last)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    live = [_number(a.metrics.get("map50_95")) for a in acc]
    test = [_number(a.metrics.get("test_map50_95")) for a in acc]
    ax.plot(range(1, len(acc) + 1), live, "o-", label="live mAP50-95")
    ax.plot(
        range(1, len(acc) + 1),
        test,
        "--",
        color="gray",
        label="test mAP50-95",
    )
    ax.set_xlabel("measurement")
    ax.set_title("live accuracy on reviewed production samples")
    ax.legend()
    save(fig, "accuracy.png")
    return written
