"""``visionloop autolabel`` and ``visionloop review …``: next, accept, edit, reject, skip, list, stats,
export, import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from visionloop.cli import JsonOpt, _table, _ws, app, emit, out, review_app
from visionloop.errors import DataError, UsageError
from visionloop.progress import progress_bar

if TYPE_CHECKING:
    from visionloop.review.queue import Task
    from visionloop.workspace import Workspace

TaskArg = Annotated[int, typer.Argument(help="Review task id (see `visionloop review next`).")]
ByOpt = Annotated[str, typer.Option("--by", help="Who decides (kept as the labels' author).")]
RedoOpt = Annotated[
    bool,
    typer.Option("--redo", help="Decide a task that was decided already (a new revision; nothing is lost)."),
]
FormatOpt = Annotated[str, typer.Option("--format", help="label-studio or coco (for CVAT).")]


@app.command()
def autolabel(
    alias: Annotated[
        str, typer.Option("--alias", help="The model that proposes: the version this alias names.")
    ] = ("production"),
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many images.")] = None,
    auto_accept: Annotated[
        float | None,
        typer.Option(
            "--auto-accept",
            help="Accept an image without review when every box scores at least this and the mirrored "
            "image agrees (default: off).",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option("--min-score", help="Lowest score proposed (default: the bundle's threshold)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose boxes on every unlabeled image with the model an alias names; queue them for review."""
    from visionloop.review.autolabel import autolabel as run

    ws = _ws()
    with progress_bar("Proposing", not as_json) as advance:
        res = run(
            ws, alias=alias, limit=limit, progress=advance, auto_accept=auto_accept, min_score=min_score
        )

    def render() -> None:
        rows = [
            ["unlabeled images considered", res.candidates],
            ["images proposed", res.proposed],
            ["boxes", res.boxes],
            ["review tasks created", res.tasks_created],
            ["auto-accepted", res.auto_accepted],
            ["failed", len(res.failed)],
        ]
        out.print(_table(f"Proposals of v{res.model_version} ({alias})", ["", "count"], rows))
        for f in res.failed[:10]:
            out.print(f"  [red]failed[/] {escape(f['name'])}: {escape(f['error'])}", highlight=False)
        if res.candidates == 0:
            out.print("Nothing to do: every unlabeled image has a proposal from this model version.")

    emit(res.to_dict(), as_json, render)


def _render_task(t: Task) -> None:
    out.print(
        f"Review task [bold]{t.id}[/] ({t.status}) — {escape(t.name)} {t.width}×{t.height}, model v{t.model_version}, "
        f"priority {t.priority:.3f}",
        highlight=False,
    )
    parts = ", ".join(f"{k} {v}" for k, v in t.reasons.items() if k not in ("band", "min_score"))
    out.print(f"  reasons: {escape(parts)}", highlight=False)
    if t.decided_by:
        out.print(f"  decided by {escape(t.decided_by)} at {t.decided_at}", highlight=False)
    boxes = t.decision if t.decision is not None else t.proposal
    rows = [
        [b["class"], *(f"{v:.1f}" for v in b["box"]), f"{b['score']:.3f}" if "score" in b else ""]
        for b in boxes
    ]
    title = "decision" if t.decision is not None else "proposal"
    out.print(
        _table(title, ["class", "x1", "y1", "x2", "y2", "score"], [[escape(str(c)) for c in r] for r in rows])
    )


@review_app.command("next")
def next_(as_json: JsonOpt = False) -> None:
    """The task most worth a look: highest priority pending first, skipped ones last."""
    from visionloop.review.queue import next_task

    task = next_task(_ws())
    emit(
        None if task is None else task.to_dict(),
        as_json,
        lambda: _render_task(task) if task else out.print("The review queue is empty."),
    )


def _expected(ws: Workspace, task_id: int, redo: bool) -> str:
    """The status a decision may replace: pending or skipped, or (``--redo``) whatever it is now."""
    from visionloop.errors import TaskConflictError
    from visionloop.review.queue import get_task

    task = get_task(ws, task_id)
    if task.status in ("pending", "skipped") or redo:
        return task.status
    raise TaskConflictError(
        f"review task {task_id} is {task.status} by {task.decided_by} already",
        where=f"review task {task_id} ({task.name})",
        fix="pass --redo to decide it anew (a new revision; the old one is kept)",
    )


def _decide(task_id: int, decision: str, by: str, redo: bool, as_json: bool, boxes: Any = None) -> None:
    from visionloop.review.queue import decide

    ws = _ws()
    task = decide(
        ws, task_id, decision, reviewer=by, boxes=boxes, expected_status=_expected(ws, task_id, redo)
    )
    emit(
        task.to_dict(),
        as_json,
        lambda: out.print(f"Review task {task.id}: {task.status} by {escape(by)}", highlight=False),
    )


@review_app.command("accept")
def accept(task_id: TaskArg, by: ByOpt, redo: RedoOpt = False, as_json: JsonOpt = False) -> None:
    """Accept the proposal as it is: a new labels revision (origin review); the image becomes labeled."""
    _decide(task_id, "accept", by, redo, as_json)


@review_app.command("edit")
def edit(
    task_id: TaskArg,
    by: ByOpt,
    boxes: Annotated[
        Path,
        typer.Option("--boxes", help='JSON file: [{"class": "name", "box": [x1, y1, x2, y2]}, …] in pixels.'),
    ],
    redo: RedoOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace the proposal with corrected boxes: a new labels revision (origin review)."""
    try:
        doc = json.loads(boxes.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("the boxes file does not exist", where=str(boxes), fix="check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"the boxes file is not readable JSON ({exc})", where=str(boxes), fix="fix the file"
        ) from None
    if isinstance(doc, dict) and "boxes" in doc:
        doc = doc["boxes"]
    _decide(task_id, "edit", by, redo, as_json, boxes=doc)


@review_app.command("reject")
def reject(task_id: TaskArg, by: ByOpt, redo: RedoOpt = False, as_json: JsonOpt = False) -> None:
    """The image is not usable: the item becomes rejected, with no labels."""
    _decide(task_id, "reject", by, redo, as_json)


@review_app.command("skip")
def skip(task_id: TaskArg, by: ByOpt, as_json: JsonOpt = False) -> None:
    """Not now: the task goes to the end of the queue."""
    _decide(task_id, "skip", by, False, as_json)


@review_app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, accepted, edited, rejected, skipped or auto_accepted."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Review tasks in queue order (highest priority first), optionally of one status."""
    from visionloop.review.queue import list_tasks

    tasks = list_tasks(_ws(), status=status, limit=limit, offset=offset)
    rows = [
        [
            t.id,
            t.status,
            f"{t.priority:.3f}",
            escape(t.name),
            f"v{t.model_version}",
            len(t.proposal),
            t.decided_by or "",
        ]
        for t in tasks
    ]
    cols = ["task", "status", "priority", "image", "model", "boxes", "decided by"]
    emit([t.to_dict() for t in tasks], as_json, lambda: out.print(_table("Review tasks", cols, rows)))


@review_app.command("stats")
def stats(as_json: JsonOpt = False) -> None:
    """Tasks per status and how many are left to review."""
    from visionloop.review.queue import queue_stats

    s = queue_stats(_ws())
    rows = [[k, v] for k, v in s["by_status"].items()]

    def render() -> None:
        out.print(_table("Review queue", ["status", "tasks"], rows))
        out.print(f"{s['left']} left to review (pending {s['pending']}), {s['reviewed']} decided by people")

    emit(s, as_json, render)


@review_app.command("export")
def export(
    out_file: Annotated[Path, typer.Argument(help="The JSON file to write.")],
    fmt: FormatOpt,
    image_root: Annotated[
        str, typer.Option("--image-root", help="URL or path prefix for the image files in the tool.")
    ] = "",
    images_dir: Annotated[
        Path | None, typer.Option("--images-dir", help="Also write the images here, named as in the file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The open queue (pending and skipped) as Label Studio tasks with predictions, or COCO for CVAT."""
    from visionloop.review.exchange import export_queue

    res = export_queue(_ws(), out_file, fmt, image_root=image_root, images_dir=images_dir)
    emit(
        res,
        as_json,
        lambda: out.print(
            f"Wrote {res['tasks']} tasks ({res['boxes']} proposed boxes) to {res['out']} ({fmt})"
        ),
    )


@review_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Label Studio JSON export or COCO file.")],
    fmt: FormatOpt,
    by: Annotated[
        str | None, typer.Option("--by", help="Who decided (default: the annotator named in the file).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply a labeling tool's answers as review decisions, matched by image id."""
    from visionloop.review.exchange import import_decisions

    res = import_decisions(_ws(), file, fmt, reviewer=by)
    report = res.to_dict()

    def render() -> None:
        d = report["decided"]
        out.print(
            f"Imported {file}: accepted {d['accept']}, edited {d['edit']}, rejected {d['reject']}; "
            f"{res.unanswered} unanswered, {res.already_decided} decided already, "
            f"{len(res.unmatched)} unmatched, {len(res.problems)} with problems",
            highlight=False,
        )
        for p in res.problems[:10]:
            out.print(f"  [red]problem[/] {escape(p['error'])}", highlight=False)

    emit(report, as_json, render)
    if res.problems and not sum(res.decided.values()):
        raise typer.Exit(5)
