"""``make demo``: the whole loop on the embedded default, in a fresh temporary workspace.

Synthetic `day` data → v1 through the pipeline (snapshot, train, evaluate, gate,
export, bundle, promote) → a real server following the `production` alias →
production traffic from a shifted domain (`night`) shows v1 doing poorly → labeled
night data arrives (a simulated reviewer: the generator's ground truth) → the agent's
threshold trigger retrains v2 by itself (warm-started from v1) → v2 is gated against
v1 on the newer test split and promoted → the running server answers with v2, and
does better at night. Accuracy per domain is measured on the server's own answers.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from rich.console import Console
from rich.table import Table

from visionloop.progress import progress_bar

console = Console()
T = TypeVar("T")
TRAFFIC = 60  # production images per domain
THRESHOLD = 100  # new labeled items that trigger a retrain
NIGHT = 240  # reviewed night images that arrive

SETTINGS = {
    "min_new_items = 100": f"min_new_items = {THRESHOLD}",
    "imgsz = 320": "imgsz = 256",
    "epochs = 30": "epochs = 12",
    "time_budget_min = 0": "time_budget_min = 1.25",
    "interval_s = 10.0": "interval_s = 1.0",
}


def _step(timings: list[tuple[str, float]], name: str, fn: Callable[[], T]) -> T:
    console.rule(f"[bold]{name}")
    t0 = time.perf_counter()
    result = fn()
    timings.append((name, time.perf_counter() - t0))
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "visionloop", "-w", str(root), *args]


class Server:
    """``visionloop serve --alias production`` as a real process."""

    def __init__(self, root: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = _cli(root, "serve", "--alias", "production", "--port", str(self.port), "--poll-seconds", "0.5")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()}")
            try:
                self.get("/readyz")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not become ready: {log.read_text()}")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            doc: dict[str, Any] = json.loads(r.read())
        return doc

    def detect(self, jpeg: bytes) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + "/v1/detect?score_threshold=0.05",
            data=jpeg,
            headers={"content-type": "image/jpeg"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            doc: dict[str, Any] = json.loads(r.read())
        return doc

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def traffic(domain: str, seed: int, size: int = 256) -> list[tuple[bytes, Any]]:
    """Production images from ``domain`` (JPEG bytes) with the generator's ground truth."""
    from visionloop.data.synth import render_scene

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(TRAFFIC):
        img, truth = render_scene(rng, domain, size)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append((buf.getvalue(), truth))
    return out


def served_map(server: Server, images: list[tuple[bytes, Any]], label: str) -> tuple[float, set[int]]:
    """mAP50 of the server's answers on ``images``, and the model versions that answered."""
    from visionloop.data.synth import SYNTH_CLASSES
    from visionloop.evaluate.metrics import coco_metrics
    from visionloop.types import Detections

    preds, versions = [], set()
    with progress_bar(label) as advance:
        advance(total=len(images))
        for jpeg, _ in images:
            doc = server.detect(jpeg)
            versions.add(int(doc["model_version"]))
            found = doc["detections"]
            preds.append(
                Detections(
                    np.array([d["box"] for d in found], dtype=np.float64).reshape(-1, 4),
                    np.array([SYNTH_CLASSES.index(d["class"]) for d in found], dtype=np.int64),
                    np.array([d["score"] for d in found], dtype=np.float64),
                )
            )
            advance()
    size = [(256, 256)] * len(images)
    res = coco_metrics([t for _, t in images], preds, SYNTH_CLASSES, size)
    return float(res.metrics["map50"]), versions


def _synth(base: Path, domain: str, n: int, seed: int) -> Path:
    from visionloop.data.synth import generate

    out = base / f"incoming-{domain}"
    with progress_bar(f"synth {domain}") as advance:
        advance(total=n)
        generate(out, images=n, seed=seed, domain=domain, size=256, progress=lambda _done: advance())
    return out


def _import(ws: Any, path: Path) -> None:
    from visionloop.data.ingest import import_dataset

    with progress_bar(f"import {path.name}") as advance:
        res = import_dataset(ws, path, progress=advance, on_scan=lambda n: advance(total=n))
    console.print(
        f"  {res.new} new images, {res.boxes} boxes {res.boxes_per_class}, "
        f"{res.rejected} rejected, {len(res.findings)} findings",
        highlight=False,
    )


def _make_workspace(root: Path) -> Any:
    from visionloop.workspace import init_workspace, open_workspace

    first = init_workspace(root)
    cfg = first.root / "visionloop.toml"
    first.close()
    text = cfg.read_text(encoding="utf-8")
    for old, new in SETTINGS.items():
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")
    return open_workspace(cfg.parent)


def _agent_retrains(ws: Any, base: Path) -> Any:
    """Start `visionloop agent`, let its threshold trigger run the pipeline once, stop it (SIGTERM)."""
    from visionloop.pipeline.runs import list_runs

    before = {r.id for r in list_runs(ws)}
    agent = subprocess.Popen(_cli(ws.root, "agent"), stdout=subprocess.DEVNULL, env={**os.environ})
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            new = [r for r in list_runs(ws) if r.id not in before]
            if new and new[0].status in ("succeeded", "failed", "retry_wait"):
                return new[0]
            if agent.poll() is not None:
                raise RuntimeError("the agent exited unexpectedly")
            time.sleep(0.5)
        raise RuntimeError("the agent did not finish a pipeline run in 10 minutes")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)


def run(base: Path) -> dict[str, Any]:
    """Run the demo under ``base``; returns the figures it printed."""
    from visionloop.cli_pipeline import pipeline_progress, render_run
    from visionloop.data.versions import diff_versions
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.registry.versions import get_model
    from visionloop.store.fsck import fsck

    timings: list[tuple[str, float]] = []
    day = _step(
        timings, "1. Synthesize 300 labeled `day` images (YOLO format)", lambda: _synth(base, "day", 300, 0)
    )
    ws = _step(
        timings,
        "2. Create the workspace (SQLite + local blob store)",
        lambda: _make_workspace(base / "project"),
    )
    console.print(f"  workspace: {ws.root}  (retrain threshold: {THRESHOLD} new labeled items)")
    _step(timings, "3. Import and validate the day data", lambda: _import(ws, day))

    def pipeline() -> Any:
        with pipeline_progress() as hook:
            return run_pipeline(ws, actor="demo", hook=hook)

    first = _step(
        timings,
        "4. `visionloop run`: snapshot → train (75 s) → evaluate → gate → export → bundle → promote",
        pipeline,
    )
    if first.status != "succeeded" or not first.outputs.get("promoted"):
        raise RuntimeError(f"v1's pipeline did not promote it: {first.error}")
    render_run(first)
    v1 = first.outputs["model_version"]

    server = _step(
        timings,
        "5. Start `visionloop serve --alias production` (ONNX Runtime; follows the alias)",
        lambda: Server(ws.root, base / "serve.log"),
    )
    try:
        console.print(f"  {server.url} serves v{server.get('/readyz')['model_version']}", highlight=False)
        day_traffic, night_traffic = traffic("day", 101), traffic("night", 102)
        scores: dict[int, dict[str, float]] = {}

        def measure(version: int) -> None:
            d, _ = served_map(server, day_traffic, f"{TRAFFIC} day requests")
            n, seen = served_map(server, night_traffic, f"{TRAFFIC} night requests")
            scores[version] = {"day": d, "night": n}
            console.print(
                f"  answered by v{sorted(seen)}: mAP50 day {d:.3f}, night {n:.3f}"
                + ("  ← the world moved on: v1 does poorly at night" if version == v1 else ""),
                highlight=False,
            )

        _step(timings, "6. Production traffic: day, then a shifted domain (night)", lambda: measure(v1))
        night = _step(
            timings,
            f"7. Reviewed night images arrive: {NIGHT}, labeled by a simulated reviewer "
            "(the generator's ground truth stands in for a person)",
            lambda: _synth(base, "night", NIGHT, 1),
        )
        _step(timings, "8. Import them (the retrain threshold is crossed)", lambda: _import(ws, night))
        second = _step(
            timings,
            "9. `visionloop agent`: its threshold trigger retrains by itself (warm start from v1), "
            "gates v2 against v1 on the newer test split, exports, bundles, promotes",
            lambda: _agent_retrains(ws, base),
        )
        render_run(second)
        v2 = second.outputs.get("model_version")
        promoted = bool(second.outputs.get("promoted"))

        def swapped() -> int:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                current = int(server.get("/readyz")["model_version"])
                if current == v2:
                    return current
                time.sleep(0.2)
            return int(server.get("/readyz")["model_version"])

        serving = _step(timings, "10. The running server follows production", swapped)
        console.print(f"  the server now answers with v{serving} (no restart)", highlight=False)
        if serving != v1:
            _step(timings, "11. The same production traffic, answered by v2", lambda: measure(serving))
    finally:
        server.stop()

    diff = diff_versions(ws, first.outputs["dataset"], second.outputs["dataset"])
    report = _step(timings, "12. fsck: re-hash every blob, check every reference", lambda: fsck(ws))

    table = Table(title="visionloop demo — the loop, closed", title_justify="left")
    for col in ("model", "trained on", "trigger", "mAP50 day", "mAP50 night", "gate", "production"):
        table.add_column(col, justify="right" if col.startswith("mAP") else "left")
    for run_, label in ((first, "300 day"), (second, f"+{diff['added']} night")):
        v = run_.outputs.get("model_version")
        if v is None:
            continue
        mv = get_model(ws, v)
        gate = mv.gate_report or {}
        checks = gate.get("checks", [])
        passed = sum(c["status"] == "pass" for c in checks)
        verdict = f"passed {passed}/{len(checks)}" if gate.get("passed") else "FAILED"
        if gate.get("production_version"):
            verdict += f" vs v{gate['production_version']}"
        s = scores.get(v, {})
        table.add_row(
            f"v{v}",
            label,
            run_.trigger,
            f"{s['day']:.3f}" if s else "-",
            f"{s['night']:.3f}" if s else "-",
            verdict,
            "yes" if run_.outputs.get("promoted") else "no",
        )
    console.print(table)
    console.print(
        "  mAP50 of the running server's answers to the same 60 day and 60 night requests", highlight=False
    )
    steps = Table(title="Pipeline step timings (seconds)", title_justify="left")
    steps.add_column("step")
    for r in (first, second):
        steps.add_column(f"run {r.id} ({r.trigger})", justify="right")
    for name in [s.name for s in first.steps]:
        row = [name]
        for r in (first, second):
            hit = [s for s in r.steps if s.name == name]
            row.append(f"{hit[-1].seconds:.1f}" if hit and hit[-1].seconds is not None else "-")
        steps.add_row(*row)
    console.print(steps)
    console.print(f"fsck: {'clean' if report.ok else f'{len(report.errors)} errors'}", highlight=False)
    w = f"visionloop -w {ws.root}"
    console.print(
        "Look next:\n"
        f"  {w} pipeline list                # runs, triggers, timings\n"
        f"  {w} pipeline show {second.id}              # every step of the agent's run\n"
        f"  {w} model list                   # versions, status, aliases\n"
        f"  {w} model show {v2}                 # metrics per class, gate report, lineage\n"
        f"  {w} model history                # what served when\n"
        f"  {w} dataset diff {first.outputs['dataset'][:8]} {second.outputs['dataset'][:8]}\n"
        f"  {w} serve --alias production     # serve it again",
        highlight=False,
    )
    better = v2 in scores and scores[v2]["night"] > scores[v1]["night"]
    ok = promoted and serving == v2 and better and report.ok
    if not ok:
        console.print("[bold red]the loop did not close as expected: see the tables above[/]")
    return {"ok": ok, "scores": scores, "v1": v1, "v2": v2, "timings": timings}


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="visionloop-demo-"))
    console.print(f"[bold]visionloop demo[/] in {base}")
    t0 = time.perf_counter()
    result = run(base)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s", highlight=False)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
