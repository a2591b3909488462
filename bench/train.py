"""Training on BCCD from scratch under a CPU budget: test mAP50, mAP50-95, wall time, images/s.

BCCD's own train/val/test ImageSets are kept (205 / 87 / 72 images). The run is the
real command, `visionloop train --time-budget MIN`, in a fresh child process on a
fresh workspace; its JSON result gives the metrics on the test split.

    .venv/bin/python bench/train.py [--budget 10] [--model NAME] [--imgsz 320]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _common import bccd_path, busy_warning, child_env, fail, machine, run_measured, write_results

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=10.0, help="training minutes")
    parser.add_argument("--model", default=None, help="architecture (default: the workspace default)")
    parser.add_argument("--imgsz", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    bccd = bccd_path()
    if not (bccd / "Annotations").is_dir():
        fail(f"BCCD not found at {bccd}; set VISIONLOOP_BCCD")
    vl = [str(Path(sys.executable).with_name("visionloop"))]
    with tempfile.TemporaryDirectory(prefix="vl-bench-train-") as tmp:
        ws = Path(tmp) / "project"
        for cmd in (
            ["init", str(ws)],
            ["-w", str(ws), "import", str(bccd)],
            ["-w", str(ws), "dataset", "snapshot", "-m", "BCCD", "--keep-splits"],
        ):
            m = run_measured([*vl, *cmd, "--json"], env=child_env())
            if not m.ok:
                fail(f"{cmd[0]} failed: {m.stderr[-2000:]}")
        train = [*vl, "-w", str(ws), "train", "--time-budget", str(args.budget), "--json"]
        for flag, value in (("--model", args.model), ("--imgsz", args.imgsz), ("--epochs", args.epochs)):
            if value is not None:
                train += [flag, str(value)]
        warning = busy_warning()
        m = run_measured(train, env=child_env())
        if not m.ok:
            fail(f"training failed: {m.stderr[-3000:]}")
        res = json.loads(m.stdout)
    fit, metrics = res["fit"], res["metrics"]
    train_s = sum(h["seconds"] for h in fit["history"])
    images_per_s = 205 * fit["epochs_done"] / train_s if train_s else 0.0
    data = {
        "benchmark": "train",
        "machine": machine(),
        "busy_warning": warning,
        "budget_min": args.budget,
        "model": res.get("model"),
        "epochs_done": fit["epochs_done"],
        "best_epoch": fit["best_epoch"],
        "stopped": fit["stopped"],
        "wall_s": round(m.wall_s, 1),
        "train_s": round(train_s, 1),
        "train_images_per_s": round(images_per_s, 2),
        "peak_rss_bytes": m.peak_rss_bytes,
        "test_map50": metrics["map50"],
        "test_map50_95": metrics["map50_95"],
        "test_map75": metrics["map75"],
        "per_class": metrics["per_class"],
        "history": fit["history"],
    }
    write_results("train.json", data)
    table = Table(title=f"visionloop train on BCCD, from scratch, {args.budget:g} min CPU budget")
    for col in ("figure", "value"):
        table.add_column(col)
    for name, value in (
        ("test mAP50", f"{metrics['map50']:.3f}"),
        ("test mAP50-95", f"{metrics['map50_95']:.3f}"),
        ("epochs (best)", f"{fit['epochs_done']} ({fit['best_epoch']})"),
        ("wall time (whole command)", f"{m.wall_s:.0f} s"),
        ("training time", f"{train_s:.0f} s"),
        ("training images/s", f"{images_per_s:.2f}"),
        ("peak memory", f"{m.peak_rss_bytes / 2**20:.0f} MiB"),
    ):
        table.add_row(name, value)
    for cls, pc in metrics["per_class"].items():
        table.add_row(f"  AP50 {cls}", "-" if pc["ap50"] is None else f"{pc['ap50']:.3f}")
    console.print(table)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")


if __name__ == "__main__":
    main()
