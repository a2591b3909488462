"""``visionloop monitor report | reference | accuracy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from visionloop.cli import JsonOpt, _table, _ws, emit, monitor_app, out


@monitor_app.command("report")
def report_cmd(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the PNG plots (default: <workspace>/reports/monitor)."),
    ] = None,
    last: Annotated[int, typer.Option(help="How many of the latest windows.")] = 20,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots (needs matplotlib).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """The latest monitoring windows (drift tests, input and prediction statistics), live accuracy,
    signals; and PNG plots of them over time."""
    from visionloop.monitor.report import accuracy_history, latest_windows, signals, write_plots

    ws = _ws()
    windows = latest_windows(ws, last)
    acc = accuracy_history(ws, last)
    sigs = signals(ws)
    written = write_plots(ws, out_dir or ws.reports / "monitor", last) if plots else []
    data = {
        "windows": [w.to_dict() for w in windows],
        "accuracy": [a.to_dict() for a in acc],
        "signals": sigs,
        "plots": [str(p) for p in written],
    }

    def fmt(v: float | None, digits: int = 3) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    def render() -> None:
        rows = []
        for w in windows:
            emb = w.test("embedding") or {}
            rows.append(
                [
                    w.id,
                    f"v{w.model_version}",
                    w.route,
                    w.ended_at.isoformat()[:19],
                    w.n,
                    w.dropped,
                    fmt(w.stat("brightness")),
                    fmt(w.stat("contrast")),
                    fmt(w.stat("boxes"), 2),
                    fmt(emb.get("p_value"), 4),
                    "[red]DRIFT[/] " + escape(", ".join(w.drift.get("flagged", [])))
                    if w.drifted
                    else escape(w.drift.get("skipped") or "ok"),
                ]
            )
        out.print(
            _table(
                f"monitoring: the latest {len(windows)} window(s)",
                [
                    "id",
                    "model",
                    "route",
                    "ended",
                    "n",
                    "dropped",
                    "brightness",
                    "contrast",
                    "boxes/img",
                    "MMD p",
                    "drift",
                ],
                rows,
            )
        )
        if acc:
            out.print(
                _table(
                    "live accuracy (reviewed production samples)",
                    ["model", "images", "mAP50-95", "test mAP50-95", "when"],
                    [
                        [
                            f"v{a.model_version}",
                            a.n_images,
                            fmt(a.metrics.get("map50_95")),
                            fmt(a.metrics.get("test_map50_95")),
                            a.created_at.isoformat()[:19],
                        ]
                        for a in acc
                    ],
                )
            )
        for s in sigs[:5]:
            out.print(
                f"signal {escape(s['key'])} ({s['kind']}, window {s['window_id']}) at {s['created_at'][:19]}",
                highlight=False,
            )
        for p in written:
            out.print(f"plot: {p}", highlight=False)

    emit(data, as_json, render)


@monitor_app.command("reference")
def reference_cmd(
    version: Annotated[
        str, typer.Argument(help="Model version or alias whose reference to build.")
    ] = "production",
    as_json: JsonOpt = False,
) -> None:
    """Build (or rebuild) the drift reference of a model now: its bundle over its dataset version's images."""
    from visionloop.monitor.reference import build_reference
    from visionloop.registry.versions import get_model

    ws = _ws()
    v = get_model(ws, version).version
    ref = build_reference(ws, v)
    data = {
        "model_version": v,
        "dataset_version": ref.dataset_version_id,
        "images": len(ref.table),
        "score_threshold": ref.score_threshold,
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"reference of v{v}: {len(ref.table)} images of dataset {ref.dataset_version_id[:12]}",
            highlight=False,
        ),
    )


@monitor_app.command("accuracy")
def accuracy_cmd(
    alias: Annotated[str, typer.Option(help="Measure the model this alias names.")] = "production",
    as_json: JsonOpt = False,
) -> None:
    """Live accuracy now: the model's mAP on reviewed production samples (signals a degradation)."""
    from visionloop.monitor.accuracy import live_accuracy

    res = live_accuracy(_ws(), alias=alias)

    def render() -> None:
        if not res.n_images or not res.metrics:
            out.print(f"v{res.model_version}: no reviewed production samples with boxes yet", highlight=False)
            return
        out.print(
            f"v{res.model_version} on {res.n_images} reviewed production samples: mAP50-95 "
            f"{res.metrics['map50_95']:.3f}, mAP50 {res.metrics['map50']:.3f} (test mAP50-95 "
            f"{res.test_map50_95 if res.test_map50_95 is not None else '—'})"
            + (f" — [red]degraded[/], signal {escape(res.signal or '')}" if res.degraded else ""),
            highlight=False,
        )

    emit(res.to_dict(), as_json, render)
