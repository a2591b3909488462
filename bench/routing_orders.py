"""Review orders compared on BCCD: is any order worth more than a random one at a small budget?

The set-up of `flywheel.py`'s routing part: BCCD with 60% of the training images' labels withheld,
v1 trained on the rest (10 epochs), `autolabel` proposes labels for the withheld images; then,
from a copy of that workspace, BUDGET tasks are answered with the ground truth in a given order
and the model is retrained (10 epochs, warm-started from v1). Orders:

- ``policy``: the routing policy's priority (the review queue's own order);
- ``random``: the tasks by id, shuffled with the seed;
- ``diverse``: greedy coverage of a 16×16-thumbnail space (distance to the labeled training
  images and to the picks so far), weighted by the policy's priority;
- ``typical``: TypiClust-style — k-means of pool and labeled images into |labeled| + BUDGET
  clusters; from the largest clusters without a labeled image, the most typical member.

Each seed's start workspace is built once and kept in ``--workdir`` (so a run can add orders);
each (seed, order) result is kept there too.

    OMP_NUM_THREADS=1 .venv/bin/python bench/routing_orders.py --seeds 0 1 --orders policy random --also-train-seeds 7
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from _common import bccd_path, busy_warning, fail, machine, write_results

console = Console()
EPOCHS = 10


def _held(work: Path) -> tuple[Path, dict[str, Any]]:
    from visionloop.review.flywheel import withhold_voc

    p = work / "held.json"
    if not p.exists():
        h = withhold_voc(bccd_path(), work / "bccd-routing", 0.6, seed=0)
        p.write_text(json.dumps({"root": str(h.root), "truth": h.truth}))
    d = json.loads(p.read_text())
    return Path(d["root"]), d["truth"]


def _start(work: Path, seed: int) -> Path:
    """The seed's workspace after v1 and autolabel, its pending tasks, and image thumbnails."""
    from sqlalchemy import select

    from flywheel import _workspace
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.review.autolabel import autolabel
    from visionloop.review.queue import list_tasks
    from visionloop.serve.model import decode
    from visionloop.store import schema

    base = work / f"s{seed}"
    if (base / "done").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    root, _ = _held(work)
    ws = _workspace(base / "start", root, EPOCHS, threshold=10_000, seed=seed)
    run_pipeline(ws, actor="bench", train_overrides={"seed": seed})
    autolabel(ws)
    tasks = list_tasks(ws, status="pending", limit=10**6)

    def thumb(oid: str) -> list[float]:
        im = decode(ws.blobs.get(oid)).resize((16, 16))
        return [float(v) for v in (np.asarray(im, np.float32) / 255).ravel()]

    with ws.engine.connect() as conn:
        labeled = [
            r[0]
            for r in conn.execute(
                select(schema.items.c.image_oid).where(
                    schema.items.c.status == "labeled", schema.items.c.source_split == "train"
                )
            )
        ]
    doc = {
        "tasks": [{"id": t.id, "priority": t.priority, "thumb": thumb(t.image_oid)} for t in tasks],
        "labeled": [thumb(o) for o in labeled],
    }
    (base / "tasks.json").write_text(json.dumps(doc))
    ws.close()
    (base / "done").touch()
    return base


def _standardized(pool: np.ndarray, labeled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.concatenate([pool, labeled])
    mu, sd = both.mean(0), both.std(0) + 1e-6
    return (pool - mu) / sd, (labeled - mu) / sd


def order_random(doc: dict[str, Any], seed: int, budget: int) -> list[int]:
    ids = sorted(t["id"] for t in doc["tasks"])
    random.Random(seed).shuffle(ids)
    return ids


def order_policy(doc: dict[str, Any], seed: int, budget: int) -> list[int]:
    return [t["id"] for t in sorted(doc["tasks"], key=lambda t: (-t["priority"], t["id"]))]


def order_diverse(doc: dict[str, Any], seed: int, budget: int) -> list[int]:
    tasks = doc["tasks"]
    x, lab = _standardized(np.array([t["thumb"] for t in tasks]), np.array(doc["labeled"]))
    pr = np.array([t["priority"] for t in tasks])
    pr = (pr - pr.min()) / (np.ptp(pr) + 1e-9)
    d = np.min(((x[:, None] - lab[None]) ** 2).sum(-1), 1) ** 0.5
    chosen: list[int] = []
    for _ in range(len(tasks)):
        s = d / (d.max() + 1e-9) * (0.5 + 0.5 * pr)
        s[chosen] = -1
        i = int(np.argmax(s))
        chosen.append(i)
        d = np.minimum(d, ((x - x[i]) ** 2).sum(-1) ** 0.5)
    return [tasks[i]["id"] for i in chosen]


def _kmeans(a: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    centres = a[np.random.default_rng(0).choice(len(a), k, replace=False)]
    labels = np.zeros(len(a), int)
    for _ in range(iterations):
        labels = np.argmin(((a[:, None] - centres[None]) ** 2).sum(-1), 1)
        for c in range(k):
            if (labels == c).any():
                centres[c] = a[labels == c].mean(0)
    return labels


def order_typical(doc: dict[str, Any], seed: int, budget: int, k_nn: int = 10) -> list[int]:
    tasks = doc["tasks"]
    x, lab = _standardized(np.array([t["thumb"] for t in tasks]), np.array(doc["labeled"]))
    a = np.concatenate([x, lab])
    n = len(x)
    cluster = _kmeans(a, min(len(a) - 1, len(lab) + budget))
    dist = ((x[:, None] - x[None]) ** 2).sum(-1) ** 0.5
    covered = set(cluster[n:].tolist())
    sizes = {c: int((cluster[:n] == c).sum()) for c in sorted(set(cluster[:n].tolist()))}
    order: list[int] = []
    for c in sorted(sizes, key=lambda c: (c in covered, -sizes[c])):
        members = [i for i in range(n) if cluster[i] == c]

        def typicality(i: int, members: list[int] = members) -> float:
            near = sorted(dist[i, j] for j in members if j != i)[:k_nn]
            return float(1 / (np.mean(near) + 1e-9)) if near else 0.0

        order.append(max(members, key=typicality))
    order += sorted((i for i in range(n) if i not in set(order)), key=lambda i: -tasks[i]["priority"])
    return [tasks[i]["id"] for i in order]


ORDERS = {"policy": order_policy, "random": order_random, "diverse": order_diverse, "typical": order_typical}


def run_order(work: Path, seed: int, name: str, budget: int, train_seed: int | None = None) -> dict[str, Any]:
    """Review ``budget`` tasks of the seed's start workspace in order ``name`` and retrain (with
    ``train_seed``, the seed itself by default: another training seed measures the retrain's noise)."""
    from flywheel import _test_map
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.registry.versions import get_model
    from visionloop.review.flywheel import REVIEWER
    from visionloop.review.queue import decide, get_task
    from visionloop.workspace import open_workspace

    base = _start(work, seed)
    ts = seed if train_seed is None else train_seed
    out = base / (f"res-{name}.json" if ts == seed else f"res-{name}-t{ts}.json")
    if out.exists():
        return {"train_seed": ts, **json.loads(out.read_text())}
    _, truth = _held(work)
    ids = ORDERS[name](json.loads((base / "tasks.json").read_text()), seed, budget)[:budget]
    copy = base / f"{name}-t{ts}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(base / "start", copy)
    ws = open_workspace(copy / ".visionloop")
    for tid in ids:
        boxes = truth[Path(get_task(ws, tid).name).name]
        if boxes:
            decide(ws, tid, "edit", reviewer=REVIEWER, boxes=boxes)
        else:
            decide(ws, tid, "reject", reviewer=REVIEWER)
    t0 = time.perf_counter()
    v = run_pipeline(ws, actor="bench", train_overrides={"seed": ts}).outputs["model_version"]
    per_class = {c: m["ap"] for c, m in get_model(ws, v).metrics["per_class"].items()}
    res = {
        "seed": seed,
        "train_seed": ts,
        "order": name,
        "ids": ids,
        **_test_map(ws, v),
        "per_class_ap": per_class,
    }
    res["retrain_s"] = round(time.perf_counter() - t0, 1)
    ws.close()
    shutil.rmtree(copy)
    out.write_text(json.dumps(res))
    console.print({k: v for k, v in res.items() if k != "ids"})
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--orders", nargs="+", default=list(ORDERS), choices=list(ORDERS))
    parser.add_argument("--review-budget", type=int, default=30)
    parser.add_argument(
        "--also-train-seeds",
        type=int,
        nargs="+",
        default=[],
        help="retrain each order with these training seeds too (besides the seed): the retrain's own noise",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vl-bench-routing-orders"))
    args = parser.parse_args()
    if not (bccd_path() / "Annotations").is_dir():
        fail(f"BCCD not found at {bccd_path()}; set VISIONLOOP_BCCD")
    warning = busy_warning()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = [
        run_order(args.workdir, s, o, args.review_budget, ts)
        for s in args.seeds
        for o in args.orders
        for ts in [s, *args.also_train_seeds]
    ]
    write_results(
        "routing_orders.json",
        {
            "benchmark": "routing_orders",
            "machine": machine(),
            "busy_warning": warning,
            "epochs": EPOCHS,
            "review_budget": args.review_budget,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
