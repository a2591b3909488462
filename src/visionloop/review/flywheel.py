"""The data flywheel on a labeled dataset, for tests and benchmarks.

A share of the training images' labels is withheld (they import as unlabeled items);
v1 is trained on the rest; the production model proposes labels for the withheld
images; a *scripted* reviewer works the queue, answering each task with the withheld
ground truth through the review API (it never looks at anything a person could not);
new labeled data then triggers the retrain. Nothing here is used by the product's
own commands: it measures them.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.data.formats.voc import read_voc
from visionloop.review.queue import decide, list_tasks, next_task
from visionloop.workspace import Workspace

REVIEWER = "scripted-reviewer"


@dataclass(frozen=True)
class Withheld:
    """A VOC copy of a dataset whose withheld training images have no annotation file."""

    root: Path
    truth: dict[str, list[dict[str, Any]]]  # image file name → ground-truth boxes (review API shape)
    withheld: list[str]


def withhold_voc(source: Path, out: Path, share: float, seed: int = 0) -> Withheld:
    """Copy a VOC dataset (``Annotations``, ``JPEGImages``, ``ImageSets``) into ``out`` without the
    annotation files of ``share`` of its training images (chosen by ``seed``)."""
    train = (source / "ImageSets" / "Main" / "train.txt").read_text().split()
    rng = random.Random(seed)
    chosen = sorted(rng.sample(sorted(train), round(len(train) * share)))
    shutil.copytree(source / "JPEGImages", out / "JPEGImages")
    shutil.copytree(source / "ImageSets", out / "ImageSets")
    (out / "Annotations").mkdir(parents=True)
    drop = set(chosen)
    for xml in sorted((source / "Annotations").glob("*.xml")):
        if xml.stem not in drop:
            shutil.copy2(xml, out / "Annotations" / xml.name)
    scan = read_voc(source)
    truth = {
        Path(item.name).name: _boxes(item.boxes or [], item.declared_size)
        for item in scan.items
        if Path(item.name).stem in drop
    }
    return Withheld(out, truth, chosen)


def _boxes(raw: list[Any], size: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Valid ground-truth boxes in the review API's shape, clipped to the image (as import clips them)."""
    w, h = size or (10**9, 10**9)
    out = []
    for b in raw:
        x1, y1 = max(0.0, float(b.x1)), max(0.0, float(b.y1))
        x2, y2 = min(float(w), float(b.x2)), min(float(h), float(b.y2))
        if x2 > x1 and y2 > y1:
            out.append({"class": b.cls, "box": [x1, y1, x2, y2]})
    return out


def review_with_truth(
    ws: Workspace,
    truth: dict[str, list[dict[str, Any]]],
    *,
    budget: int | None = None,
    order: str = "policy",
    seed: int = 0,
    on_task: Callable[[], None] | None = None,
) -> int:
    """Answer pending tasks with the ground truth (``edit`` with the true boxes, or ``reject`` when the
    image has none): in the routing policy's order, or in a random order (``order="random"``), up
    to ``budget`` tasks. Returns how many were decided."""
    done = 0
    if order == "random":
        pending = list_tasks(ws, status="pending", limit=1_000_000)
        random.Random(seed).shuffle(pending)
        queue = iter(pending)
    while budget is None or done < budget:
        task = next_task(ws) if order == "policy" else next(queue, None)
        if task is None:
            break
        boxes = truth.get(Path(task.name).name)
        if boxes is None:
            raise KeyError(f"no ground truth for {task.name}")
        if boxes:
            decide(ws, task.id, "edit", reviewer=REVIEWER, boxes=boxes)
        else:
            decide(ws, task.id, "reject", reviewer=REVIEWER)
        done += 1
        if on_task is not None:
            on_task()
    return done
