"""The data flywheel on BCCD, and whether routing is worth it.

Flywheel: BCCD with 60% of the training images' labels withheld (imported as
unlabeled); v1 trained on the rest through the pipeline; `autolabel` proposes labels
for the withheld images; a scripted reviewer answers every task with the withheld
ground truth through the review API; two agents then look at the threshold together —
exactly one pipeline run must start — and v2 (warm-started from v1) is compared with
v1 on BCCD's test split.

Routing: from the same v1 and the same proposals, review only BUDGET images — in the
routing policy's order, or in a random order — then retrain; over two seeds.

    .venv/bin/python bench/flywheel.py [--epochs 10] [--review-budget 30] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from _common import bccd_path, busy_warning, fail, machine, write_results

console = Console()


def _workspace(root: Path, data: Path, epochs: int, threshold: int, seed: int) -> Any:
    from visionloop.data.ingest import import_dataset
    from visionloop.workspace import init_workspace, open_workspace

    first = init_workspace(root)
    cfg = first.root / "visionloop.toml"
    first.close()
    text = cfg.read_text()
    for old, new in {
        "keep_source_splits = false": "keep_source_splits = true",
        "min_new_items = 100": f"min_new_items = {threshold}",
        "epochs = 30": f"epochs = {epochs}",  # epochs, not minutes: the same work under any load
    }.items():
        text = text.replace(old, new)
    cfg.write_text(text + f"\n# bench seed {seed}\n")
    ws = open_workspace(cfg.parent)
    import_dataset(ws, data)
    return ws


def _test_map(ws: Any, version: int) -> dict[str, float]:
    from visionloop.registry.versions import get_model

    m = get_model(ws, version).metrics
    return {"map50_95": m["map50_95"], "map50": m["map50"]}


def flywheel(tmp: Path, bccd: Path, epochs: int) -> dict[str, Any]:
    from visionloop.pipeline.agent import Agent
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.pipeline.runs import list_runs
    from visionloop.review.autolabel import autolabel
    from visionloop.review.flywheel import review_with_truth, withhold_voc

    held = withhold_voc(bccd, tmp / "bccd-withheld", 0.6, seed=0)
    ws = _workspace(tmp / "flywheel", held.root, epochs, threshold=len(held.withheld) // 2, seed=0)
    t0 = time.perf_counter()
    v1_run = run_pipeline(ws, actor="bench")
    v1 = v1_run.outputs["model_version"]
    console.print(f"v1 (40% of train labels): {_test_map(ws, v1)}")
    proposed = autolabel(ws)
    reviewed = review_with_truth(ws, held.truth)
    agents = [Agent(ws), Agent(ws)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda a=a: results.append(a.tick())) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [r for r in list_runs(ws) if r.trigger == "threshold"]
    started = [r for r in results if r is not None]
    v2 = started[0].outputs["model_version"] if started else None
    out = {
        "withheld_images": len(held.withheld),
        "proposed": proposed.to_dict(),
        "reviewed": reviewed,
        "threshold_runs": len(runs),
        "agents_that_ran": len(started),
        "v1": {"version": v1, **_test_map(ws, v1)},
        "v2": {
            "version": v2,
            **(_test_map(ws, v2) if v2 else {}),
            "promoted": bool(started and started[0].outputs.get("promoted")),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    console.print(f"v2 (all train labels after review): {out['v2']}")
    return out


def routing(tmp: Path, bccd: Path, epochs: int, review_budget: int, seeds: list[int]) -> list[dict[str, Any]]:
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.review.autolabel import autolabel
    from visionloop.review.flywheel import review_with_truth, withhold_voc

    held = withhold_voc(bccd, tmp / "bccd-routing", 0.6, seed=0)
    rows = []
    for seed in seeds:
        base = tmp / f"routing-{seed}"
        ws = _workspace(base / "start", held.root, epochs, threshold=10_000, seed=seed)
        v1 = run_pipeline(ws, actor="bench", train_overrides={"seed": seed}).outputs["model_version"]
        autolabel(ws)
        ws.close()
        for order in ("policy", "random"):
            shutil.copytree(base / "start", base / order)
            from visionloop.workspace import open_workspace

            copy = open_workspace(base / order / ".visionloop")
            n = review_with_truth(copy, held.truth, budget=review_budget, order=order, seed=seed)
            run = run_pipeline(copy, actor="bench", train_overrides={"seed": seed})
            v = run.outputs["model_version"]
            row = {
                "seed": seed,
                "order": order,
                "reviewed": n,
                "v1": _test_map(copy, v1),
                "retrained": _test_map(copy, v),
            }
            console.print(row)
            rows.append(row)
            copy.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per model")
    parser.add_argument("--review-budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--skip-routing", action="store_true")
    parser.add_argument("--skip-flywheel", action="store_true")
    args = parser.parse_args()
    bccd = bccd_path()
    if not (bccd / "Annotations").is_dir():
        fail(f"BCCD not found at {bccd}; set VISIONLOOP_BCCD")
    warning = busy_warning()

    def save(fw: dict[str, Any], rt: list[dict[str, Any]]) -> None:
        write_results(
            "flywheel.json" if fw else "routing.json",
            {
                "benchmark": "flywheel",
                "machine": machine(),
                "busy_warning": warning,
                "epochs": args.epochs,
                "review_budget": args.review_budget,
                "flywheel": fw,
                "routing": rt,
            },
        )

    with tempfile.TemporaryDirectory(prefix="vl-bench-flywheel-") as tmp:
        fw = {} if args.skip_flywheel else flywheel(Path(tmp), bccd, args.epochs)
        save(fw, [])  # the flywheel's figures stand even if the routing runs are cut short
        rt = (
            [] if args.skip_routing else routing(Path(tmp), bccd, args.epochs, args.review_budget, args.seeds)
        )
    table = Table(title="Routing: retrained test mAP50-95 with the same review budget")
    for col in ("seed", "policy order", "random order", "policy − random"):
        table.add_column(col, justify="right")
    for seed in args.seeds:
        got = {r["order"]: r["retrained"]["map50_95"] for r in rt if r["seed"] == seed}
        if len(got) == 2:
            table.add_row(
                str(seed),
                f"{got['policy']:.4f}",
                f"{got['random']:.4f}",
                f"{got['policy'] - got['random']:+.4f}",
            )
    console.print(table)
    save(fw, rt)


if __name__ == "__main__":
    main()
