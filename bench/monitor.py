"""Monitoring: what it costs the server, and whether it catches drift and only drift.

A workspace is built first: synthetic `day` scenes (160 px), SSDlite (320 px input) trained briefly,
exported, promoted, and its monitoring reference built (its dataset version's images).

1. **Cost**: the same server twice, as real processes on 127.0.0.1 — uvicorn serving
   ``create_app(bundle)`` without an observer (``off``), and with the recorder process that
   ``visionloop serve --monitor`` runs (``on``: ``RecorderProcess(ws).observe``, the ``[monitor]``
   defaults: windows of 200, drift tests on each, 1% of images kept as unlabeled items);
   ``--thread`` adds a third server with the recorder as a thread inside the server, for comparison.
   N keep-alive HTTP clients post the same 640×480 JPEG; the servers take turns for ``--rounds``
   rounds so all meet the same background load, and the median images/s of each gives the cost. The
   recorder's counts (processed, dropped, windows) are read back from a monitored server when it stops.
2. **Drift**: per seed, `day` traffic (fresh scenes, never seen in training) for ``--day-windows``
   windows, then `night` traffic until a window is flagged (at most 3 windows), through the model
   and the recorder exactly as the server's observer runs them (no HTTP: the figure is about the
   tests, not the transport). Reported: windows to detect night, false alarms per 100 day windows.

    .venv/bin/python bench/monitor.py [--seconds 8] [--rounds 3] [--clients 4] [--day-windows 30]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from _common import RESULTS, busy_warning, child_env, code_state, machine, write_results
from serve import _free_port, request_image, run_server, wait_ready

console = Console()
SIZE = 160
WINDOW = 200


def build_workspace(work: Path, train_seconds: float) -> Path:
    """A workspace whose production model (v1) was trained on `day`, with its reference built."""
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.run import export_model
    from visionloop.monitor.reference import build_reference
    from visionloop.registry.aliases import promote
    from visionloop.registry.versions import set_status
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    generate(work / "day", images=600, seed=1, size=SIZE)
    with init_workspace(work / "project") as ws:  # the workspace folder: work/project/.visionloop
        import_dataset(ws, work / "day")
        snapshot(ws, "day", keep_splits=True)
        train(ws, "latest", TrainConfig(imgsz=320, epochs=50, time_budget_min=train_seconds / 60))
        export_model(ws, 1, parity_images=4, int8=False, ort=False)
        set_status(ws, 1, "approved")
        promote(ws, 1, actor="bench", reason="day model")
        build_reference(ws, 1)
        return ws.root


def server_child(root: str, port: int, mode: str, status_path: str) -> None:
    """The server under test: ``create_app`` on the production bundle, without a recorder (``off``),
    with the recorder process (``on``) or with the recorder thread (``thread``)."""
    import uvicorn

    from visionloop.monitor.process import RecorderProcess
    from visionloop.monitor.recorder import Recorder
    from visionloop.serve.app import create_app
    from visionloop.serve.follow import open_alias
    from visionloop.serve.model import Holder
    from visionloop.workspace import open_workspace

    ws = open_workspace(root)
    holder = Holder(open_alias(ws, "production"))
    warm = [holder.current.version]
    recorder: Any = None
    if mode == "on":
        recorder = RecorderProcess(ws).start(warm)
    elif mode == "thread":
        recorder = Recorder(ws).start(warm)
    app = create_app(holder, observer=recorder.observe if recorder else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    def on_term(_sig: int, _frame: Any) -> None:  # uvicorn re-raises SIGTERM after its own shutdown
        if not server.should_exit:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        server.run()
    finally:
        if recorder is not None:
            recorder.stop()
            Path(status_path).write_text(json.dumps(recorder.status()))
        ws.close()


class Child:
    """A server child process on a free port (the shape ``serve.run_server`` expects)."""

    def __init__(self, root: Path, mode: str, work: Path) -> None:

        self.port = _free_port()
        self.status_path = work / f"status-{mode}.json"
        cmd = [
            sys.executable,
            __file__,
            "--server-child",
            str(root),
            str(self.port),
            mode,
            str(self.status_path),
        ]
        self.log = work / f"server-{mode}.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=err)
        wait_ready(self.proc, self.port, self.log, 120)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        return dict(json.loads(self.status_path.read_text())) if self.status_path.exists() else {}


def cost(root: Path, work: Path, clients: int, seconds: float, rounds: int, thread: bool) -> dict[str, Any]:
    data = request_image(work / "frame.jpg")
    modes = ["off", "on"] + (["thread"] if thread else [])
    servers = {m: Child(root, m, work) for m in modes}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    recorders: dict[str, Any] = {}
    try:
        for i in range(rounds):  # take turns (and rotate who goes first) so all meet the same load
            order = modes[i % len(modes) :] + modes[: i % len(modes)]
            for m in order:
                runs[m].append(run_server(servers[m], data, clients, seconds))  # type: ignore[arg-type]
            line = ", ".join(f"{m} {runs[m][-1]['images_per_s']} img/s" for m in modes)
            console.print(f"round {i + 1}: {line}", highlight=False)
    finally:
        for m, server in servers.items():
            recorders[m] = server.stop()
    median = {m: statistics.median(r["images_per_s"] for r in runs[m]) for m in modes}

    def per_round(m: str) -> list[float]:
        return [
            round(1 - b["images_per_s"] / a["images_per_s"], 4)
            for a, b in zip(runs["off"], runs[m], strict=True)
        ]

    out: dict[str, Any] = {
        "clients": clients,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "off": {"images_per_s": median["off"], "rounds": runs["off"]},
        "on": {"images_per_s": median["on"], "rounds": runs["on"], "recorder": recorders["on"]},
        "cost": round(1 - median["on"] / median["off"], 4),
        "cost_per_round": per_round("on"),
        "target_cost": 0.05,
    }
    if thread:
        out["thread"] = {
            "images_per_s": median["thread"],
            "rounds": runs["thread"],
            "recorder": recorders["thread"],
            "cost": round(1 - median["thread"] / median["off"], 4),
            "cost_per_round": per_round("thread"),
        }
    return out


def drift(root: Path, seeds: list[int], day_windows: int) -> dict[str, Any]:
    """Day then night traffic through the model and the recorder, per seed."""
    import numpy as np
    from PIL import Image

    from visionloop.data.synth import render_scene
    from visionloop.monitor.recorder import Recorder
    from visionloop.serve.follow import open_alias
    from visionloop.serve.model import detect
    from visionloop.serve.observe import Observation
    from visionloop.workspace import open_workspace

    per_seed = []
    with open_workspace(root) as ws:
        loaded = open_alias(ws, "production")
        threshold = float(loaded.bundle.manifest["score_threshold"])
        cfg = ws.settings.monitor.model_copy(update={"sample_rate": 0.0})

        def window(rec: Recorder, rng: np.random.Generator, domain: str) -> Any:
            closed = None
            for _ in range(cfg.window_size):
                image, _ = render_scene(rng, domain, SIZE)
                buf = io.BytesIO()
                image.save(buf, "JPEG", quality=90)  # production images arrive as JPEG
                rgb = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
                obs = Observation(loaded.version, "production", rgb, detect(loaded, rgb, threshold), 0.0, 0.0)
                closed = rec.process(obs)
            assert closed is not None
            return closed

        for seed in seeds:
            rec = Recorder(ws, cfg, seed=seed, clock=lambda: 0.0)
            rng = np.random.default_rng(1000 + seed)
            t0 = time.perf_counter()
            day = [window(rec, rng, "day") for _ in range(day_windows)]
            to_detect = None
            night = []
            for k in range(1, 4):
                night.append(window(rec, rng, "night"))
                if night[-1].drifted:
                    to_detect = k
                    break
            false_alarms = sum(w.drifted for w in day)
            flags = [len(w.report.flagged) for w in day]
            per_seed.append(
                {
                    "seed": seed,
                    "day_windows": len(day),
                    "false_alarms": false_alarms,
                    "false_alarms_per_100_windows": round(100 * false_alarms / len(day), 2),
                    "day_windows_with_one_flag": sum(f == 1 for f in flags),
                    "windows_to_detect_night": to_detect,
                    "night_flagged_tests": night[-1].report.flagged,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            console.print(per_seed[-1], highlight=False)
    total_day = sum(s["day_windows"] for s in per_seed)
    total_false = sum(s["false_alarms"] for s in per_seed)
    return {
        "window_size": WINDOW,
        "image_size": SIZE,
        "seeds": per_seed,
        "false_alarms_per_100_day_windows": round(100 * total_false / total_day, 2),
        "max_windows_to_detect_night": max((s["windows_to_detect_night"] or 99) for s in per_seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--train-seconds", type=float, default=60.0)
    parser.add_argument("--day-windows", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="build the workspace in this folder, or reuse it when it is one",
    )
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-drift", action="store_true")
    parser.add_argument("--thread", action="store_true", help="also measure the recorder as a thread")
    parser.add_argument("--server-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_child:
        root, port, mode, status = args.server_child
        server_child(root, int(port), mode, status)
        return
    with tempfile.TemporaryDirectory(prefix="vl-bench-monitor-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        built = args.workspace / "project" / ".visionloop" if args.workspace else None
        if built is not None and (built / "visionloop.toml").exists():
            root = built
        else:
            root = build_workspace(args.workspace or work, args.train_seconds)
        build_s = time.perf_counter() - t0
        warning, code_before, load_before = busy_warning(), code_state(), os.getloadavg()
        result: dict[str, Any] = {
            "benchmark": "monitor",
            "machine": machine(),
            "busy_warning": warning,
            "loadavg_start": [round(x, 2) for x in load_before],
            "build_s": round(build_s, 1),
        }
        if not args.skip_cost:
            result["cost"] = cost(root, work, args.clients, args.seconds, args.rounds, args.thread)
            c = result["cost"]
            console.print(
                f"monitoring off {c['off']['images_per_s']:.1f} img/s, on {c['on']['images_per_s']:.1f} img/s: "
                f"cost {c['cost']:.1%} (target ≤ 5%); recorder {c['on']['recorder']}",
                highlight=False,
            )
        if not args.skip_drift:
            result["drift"] = drift(root, args.seeds, args.day_windows)
            d = result["drift"]
            console.print(
                f"drift: night detected within {d['max_windows_to_detect_night']} window(s); "
                f"{d['false_alarms_per_100_day_windows']} false alarms per 100 day windows",
                highlight=False,
            )
        previous = RESULTS / "monitor.json"
        if (args.skip_cost or args.skip_drift) and previous.exists():  # keep the part not measured now
            kept = json.loads(previous.read_text())
            for part in ("cost", "drift"):
                if part not in result and part in kept:
                    result[part] = kept[part] | {"measured_in_an_earlier_run": kept["machine"]["date_utc"]}
        result["code"] = {"start": code_before, "end": code_state()}
        result["busy_warning"] = warning or busy_warning()
    write_results("monitor.json", result)


if __name__ == "__main__":
    main()
