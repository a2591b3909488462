"""``make demo``: the loop on the embedded default, in a fresh temporary workspace.

Synthesize `day` data, import and validate it, version it, add shifted-domain
(`night`) data, diff the versions, export and re-import losslessly, fsck; then
train a model on each version, gate each (the second against production on the
newer test split) and promote what passes. Export, serving, monitoring and the
agent join this script as they land; the summary says so plainly.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from visionloop.progress import progress_bar

console = Console()
T = TypeVar("T")


def _step(timings: list[tuple[str, float]], name: str, fn: Callable[[], T]) -> T:
    console.rule(f"[bold]{name}")
    t0 = time.perf_counter()
    result = fn()
    timings.append((name, time.perf_counter() - t0))
    return result


def _model_half(ws: Any, v1: str, v2: str, timings: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """Train on v1, gate, promote; train on v2, gate against production on v2's test split."""
    try:
        from visionloop.train.config import TrainConfig
        from visionloop.train.run import train
    except ImportError:
        return [("model half", "skipped: install the `train` extra (make demo does)")]
    from visionloop.registry.aliases import promote
    from visionloop.registry.gate import gate_model

    cfg = TrainConfig(imgsz=256, epochs=12, time_budget_min=0.75, device="cpu")
    rows = []
    for n, version in ((1, v1), (2, v2)):
        console.rule(
            f"[bold]{12 + 2 * n - 1}. Train model m{n} on dataset version {version[:12]} (45 s budget)"
        )
        t0 = time.perf_counter()
        with progress_bar(f"train m{n}") as advance:

            def hook(kind: str, _info: dict[str, Any], advance: Callable[..., None] = advance) -> None:
                if kind == "step":
                    advance()

            res = train(ws, version, cfg, hook=hook, created_by="demo")
        timings.append((f"train m{n}", time.perf_counter() - t0))
        assert res.model_version is not None
        mv = res.model_version
        console.rule(f"[bold]{12 + 2 * n}. Gate model v{mv}: floors, and no regression against production")
        t0 = time.perf_counter()
        report = gate_model(ws, mv)
        timings.append((f"gate v{mv}", time.perf_counter() - t0))
        verdict = "passed" if report.passed else "refused: " + "; ".join(c.detail for c in report.failed())
        if report.passed:
            promote(ws, mv, actor="demo", reason="passed its gates")
            verdict += ", promoted to production"
        console.print(f"  v{mv}: {verdict}", highlight=False)
        metrics = f"test mAP50 {res.metrics['map50']:.3f}, mAP50-95 {res.metrics['map50_95']:.3f}"
        rows.append((f"model v{mv} (data {version[:12]})", f"{metrics}; gate {verdict}"))
    return rows


def run(base: Path) -> dict[str, Any]:
    """Run the demo under ``base``; returns the figures it printed."""
    from visionloop.data.export import export_version
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import diff_versions, load_manifest, snapshot
    from visionloop.store.fsck import fsck
    from visionloop.workspace import init_workspace

    timings: list[tuple[str, float]] = []

    def synth(domain: str, n: int, seed: int) -> Path:
        out = base / f"incoming-{domain}"
        with progress_bar(f"synth {domain}") as advance:
            advance(total=n)
            generate(out, images=n, seed=seed, domain=domain, size=256, progress=advance)
        return out

    def load(ws: Any, path: Path) -> Any:
        with progress_bar(f"import {path.name}") as advance:
            res = import_dataset(ws, path, progress=advance, on_scan=lambda n: advance(total=n))
        console.print(
            f"  {res.new} new images, {res.boxes} boxes {res.boxes_per_class}, "
            f"{res.rejected} rejected, {len(res.findings)} findings",
            highlight=False,
        )
        return res

    day = _step(timings, "1. Synthesize 300 `day` images (YOLO format)", lambda: synth("day", 300, 0))
    ws = _step(
        timings,
        "2. Create the workspace (SQLite + local blob store)",
        lambda: init_workspace(base / "project"),
    )
    console.print(f"  workspace: {ws.root}")
    _step(timings, "3. Import and validate the day data", lambda: load(ws, day))
    v1, _ = _step(timings, "4. Snapshot dataset version v1", lambda: snapshot(ws, "day data"))
    console.print(f"  v1 = {v1.short}: {v1.n_images} images, {v1.n_boxes} boxes", highlight=False)
    night = _step(
        timings,
        "5. New data arrives from a shifted domain: 120 `night` images",
        lambda: synth("night", 120, 1),
    )
    _step(timings, "6. Import the night data", lambda: load(ws, night))
    v2, _ = _step(timings, "7. Snapshot v2", lambda: snapshot(ws, "day + night"))
    diff = _step(timings, "8. Diff v1 → v2", lambda: diff_versions(ws, v1.id, v2.id))
    console.print(
        f"  +{diff['added']} images; boxes per class "
        f"{ {c: x['delta'] for c, x in diff['boxes_per_class'].items()} }",
        highlight=False,
    )
    again = _step(timings, "9. Re-import the same data (must add nothing)", lambda: load(ws, night))
    out = base / "export-coco"
    _step(timings, "10. Export v2 as COCO", lambda: export_version(ws, v2.id, "coco", out))
    fresh = init_workspace(base / "roundtrip")
    _step(timings, "11. Import the export into a fresh workspace", lambda: load(fresh, out))
    v3, _ = snapshot(fresh, "round trip")
    same = {e[0] for e in load_manifest(ws, v2)["items"]} == {
        e[0] for e in load_manifest(fresh, v3)["items"]
    } and v3.stats["boxes_per_class"] == v2.stats["boxes_per_class"]
    report = _step(timings, "12. fsck: re-hash every blob, check every reference", lambda: fsck(ws))
    models = _model_half(ws, v1.id, v2.id, timings)

    table = Table(title="visionloop demo", title_justify="left")
    for col in ("check", "result"):
        table.add_column(col)
    table.add_row("v1 (day)", f"{v1.short}  {v1.n_images} images  {v1.n_boxes} boxes")
    table.add_row("v2 (day + night)", f"{v2.short}  {v2.n_images} images  {v2.n_boxes} boxes")
    table.add_row("re-import adds nothing", "yes" if again.new == 0 and again.relabeled == 0 else "NO")
    table.add_row("export → import round trip", "identical images and boxes" if same else "DIFFERENT")
    table.add_row("fsck", "clean" if report.ok else f"{len(report.errors)} errors")
    for row in models:
        table.add_row(*row)
    table.add_row(
        "export, bundle, serve",
        "built as commands (visionloop export | bundle | serve); not in this demo yet",
    )
    table.add_row("monitor → agent → retrain loop", "not in this build yet")
    console.print(table)
    steps = Table(title="Step timings", title_justify="left")
    steps.add_column("step")
    steps.add_column("seconds", justify="right")
    for name, secs in timings:
        steps.add_row(name, f"{secs:.2f}")
    console.print(steps)
    console.print(
        "Look next:\n"
        f"  visionloop -w {ws.root} dataset list\n"
        f"  visionloop -w {ws.root} dataset show {v2.short}\n"
        f"  visionloop -w {ws.root} dataset diff {v1.short} {v2.short}\n"
        f"  visionloop -w {ws.root} fsck\n"
        f"  visionloop -w {ws.root} model list\n"
        f"  visionloop -w {ws.root} model show 1\n"
        f"  visionloop -w {ws.root} model history",
        highlight=False,
    )
    ok = again.new == 0 and same and report.ok
    return {"ok": ok, "v1": v1.id, "v2": v2.id, "timings": timings}


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="visionloop-demo-"))
    console.print(f"[bold]visionloop demo[/] in {base}")
    result = run(base)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
