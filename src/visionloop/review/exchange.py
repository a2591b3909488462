"""Exchange with labeling tools: the open queue out as Label Studio tasks or COCO (for CVAT), the
people's answers back in as review decisions.

Images are named by their oid (``<oid>.jpg``), so an answer finds its task by image id even when
the tool renumbers tasks and images. The conversions are pure
(:mod:`~visionloop.review.label_studio`, :mod:`~visionloop.review.coco_cvat`); this module reads
and writes the workspace and the files.

- Label Studio: one task per image, ``data.image`` = ``image_root`` + file name, ``meta`` with the
  image oid and review task id, the proposal as a ``predictions`` entry of ``rectanglelabels``
  results in percent of the image. Its JSON export comes back: the newest annotation of a task
  decides it — ``was_cancelled`` (or a ``choices`` answer "reject") rejects the image, otherwise
  its rectangles (percent → pixels) accept the proposal when they equal it, else edit it. The
  reviewer is the one given, else the annotator named in the file.
- COCO (CVAT imports and exports it): images, the workspace's classes as categories, the
  proposals as annotations (``bbox`` xywh pixels, ``score``). Coming back, every image's boxes
  accept or edit its task.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from visionloop.data import labels as labelset
from visionloop.errors import DataError, TaskConflictError, UsageError
from visionloop.review.answer import file_name
from visionloop.review.boxes import check_boxes
from visionloop.review.coco_cvat import from_coco, to_coco
from visionloop.review.label_studio import from_label_studio, to_label_studio
from visionloop.review.queue import Task, decide, list_tasks
from visionloop.store import schema
from visionloop.workspace import Workspace

FORMATS = ("label-studio", "coco")
OPEN = ("pending", "skipped")


@dataclass
class ImportResult:
    """What an import of answers did."""

    format: str
    source: str
    decided: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    already_decided: int = 0
    unmatched: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "format": self.format,
            "source": self.source,
            "decided": {d: self.decided.get(d, 0) for d in ("accept", "edit", "reject")},
            "unanswered": self.unanswered,
            "already_decided": self.already_decided,
            "unmatched": self.unmatched,
            "problems": self.problems,
        }


def _open_tasks(ws: Workspace, statuses: tuple[str, ...]) -> list[Task]:
    out: list[Task] = []
    for status in statuses:
        offset = 0
        while page := list_tasks(ws, status=status, limit=500, offset=offset):
            out += page
            offset += len(page)
    return out


def _formats(ws: Workspace, tasks: list[Task]) -> dict[str, str]:
    oids = list({t.image_oid for t in tasks})
    out: dict[str, str] = {}
    with ws.engine.connect() as conn:
        for i in range(0, len(oids), 500):
            q = select(schema.images.c.oid, schema.images.c.format).where(
                schema.images.c.oid.in_(oids[i : i + 500])
            )
            out.update({r[0]: r[1] for r in conn.execute(q)})
    return out


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"no exchange format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")


def export_queue(
    ws: Workspace,
    out: Path | str,
    fmt: str,
    *,
    image_root: str = "",
    images_dir: Path | str | None = None,
    statuses: tuple[str, ...] = OPEN,
) -> dict[str, Any]:
    """Write the open tasks (pending and skipped) as ``fmt`` to ``out``; with ``images_dir``, also
    write their images there under the exported file names. Returns a summary."""
    _check_format(fmt)
    tasks = _open_tasks(ws, statuses)
    formats = _formats(ws, tasks)
    doc: Any = (
        to_label_studio(tasks, formats, image_root)
        if fmt == "label-studio"
        else to_coco(tasks, formats, ws.classes())
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if images_dir is not None:
        folder = Path(images_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for t in tasks:
            target = folder / file_name(t, formats[t.image_oid])
            if not target.exists():
                target.write_bytes(ws.blobs.get(t.image_oid))
    return {
        "format": fmt,
        "out": str(path),
        "tasks": len(tasks),
        "boxes": sum(len(t.proposal) for t in tasks),
        "images_dir": None if images_dir is None else str(images_dir),
    }


def _latest_tasks(ws: Workspace) -> tuple[dict[str, Task], set[str]]:
    """The open task of each image (its newest) and the images whose tasks are all decided."""
    open_by_oid: dict[str, Task] = {}
    for t in _open_tasks(ws, OPEN):
        if t.image_oid not in open_by_oid or t.id > open_by_oid[t.image_oid].id:
            open_by_oid[t.image_oid] = t
    tasks = schema.review_tasks
    q = select(tasks.c.image_oid).where(tasks.c.status.notin_(OPEN)).distinct()
    with ws.engine.connect() as conn:
        decided = set(conn.scalars(q))
    return open_by_oid, decided - set(open_by_oid)


def _same_as_proposal(task: Task, boxes: list[dict[str, Any]], ws: Workspace) -> bool:
    try:
        mine = check_boxes(
            boxes, ws.classes(), task.width, task.height, tolerance=ws.settings.import_.box_tolerance_px
        )
    except (DataError, UsageError):
        return False
    proposed = [(*p["box"], p["class"], False) for p in task.proposal]
    return labelset.canonical(mine)[1] == labelset.canonical(proposed)[1]


def import_decisions(
    ws: Workspace, path: Path | str, fmt: str, *, reviewer: str | None = None
) -> ImportResult:
    """Apply the answers in a Label Studio JSON export or a COCO file as review decisions.

    Each answer decides the open task of its image through :func:`~visionloop.review.queue.decide`
    (origin ``review``, author ``reviewer`` or, when None, the annotator in the file). A box that
    fails the checks leaves its task open and is reported; re-importing the same file decides
    nothing twice."""
    _check_format(fmt)
    source = Path(path)
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            "the file to import does not exist", where=str(source), fix="check the path"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"the file is not readable JSON ({exc})", where=str(source), fix="export it again"
        ) from None
    open_by_oid, decided = _latest_tasks(ws)
    sizes = {oid: (t.width, t.height) for oid, t in open_by_oid.items()}
    reader = from_label_studio if fmt == "label-studio" else from_coco
    try:
        answers, unanswered, unmatched = reader(doc, sizes)
    except DataError as exc:
        raise DataError(
            exc.what, where=f"{source}: {exc.where}" if exc.where else str(source), fix=exc.fix
        ) from None
    result = ImportResult(fmt, str(source), unanswered=unanswered)
    for ref in unmatched:
        if ref in decided:
            result.already_decided += 1
        else:
            result.unmatched.append(ref)
    for a in answers:
        task = open_by_oid[a.image_oid]
        who = reviewer or a.annotator
        if not who:
            raise UsageError(
                "the file names no annotator, so the decisions need a reviewer's name",
                where=str(source),
                fix="pass --by NAME",
            )
        decision = a.decision
        if decision == "edit" and _same_as_proposal(task, a.boxes, ws):
            decision = "accept"
        try:
            decide(
                ws,
                task.id,
                decision,
                reviewer=who,
                boxes=a.boxes if decision == "edit" else None,
                expected_status=task.status,
            )
        except TaskConflictError:
            result.already_decided += 1
        except (DataError, UsageError) as exc:
            result.problems.append(
                {"where": f"{source}: {a.where}", "task": str(task.id), "error": exc.message}
            )
        else:
            result.decided[decision] += 1
    return result
