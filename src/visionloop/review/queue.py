"""The review queue: the one API the CLI and the dashboard use to show, judge and count tasks.

A task holds a model's proposal for one image. A person decides it:

- ``accept``: the proposal as it is;
- ``edit``: the boxes the person gives (moved, resized, added, deleted, class changed);
- ``reject``: the image is not usable (the item becomes ``rejected``, with no labels);
- ``skip``: not now (the task goes to the end of the queue).

Accept and edit write a NEW labels revision (origin ``review``, author the reviewer, parent the
proposal — or the task's previous decision when it is decided anew); the item points to it and
becomes ``labeled``. Nothing is overwritten. A decision is a compare-and-set on the task's
status (``expected_status``): of two reviewers deciding one task, one wins and the other gets a
:class:`TaskConflictError`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, select, update

from visionloop.data import labels as labelset
from visionloop.data.validate import Box
from visionloop.errors import TaskConflictError, TaskNotFoundError, UsageError
from visionloop.review.boxes import check_boxes, records
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

#: Every status a review task can have.
STATUSES = ("pending", "accepted", "edited", "rejected", "skipped", "auto_accepted")
#: Each decision and the task status it leads to.
DECISIONS = {"accept": "accepted", "edit": "edited", "reject": "rejected", "skip": "skipped"}
_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp"}
_MIME |= {"WEBP": "image/webp", "TIFF": "image/tiff", "GIF": "image/gif"}


@dataclass(frozen=True)
class Task:
    """One review task, with its image's facts, the proposal and (once decided) the decision.

    ``reasons``: the routing components (``ambiguous``, ``uncertainty``, ``disagreement``,
    ``rarity``), the boxes ``matched`` / ``unmatched`` between the image and its mirror,
    ``auto_accept``, and the ``band`` and ``min_score`` the proposal was made with.
    ``proposal``: ``[{"class", "box": [x1, y1, x2, y2], "score"}]``; ``decision``: the boxes of
    the decision's labels revision, ``[{"class", "box"}]`` (None while undecided or rejected)."""

    id: int
    image_oid: str
    name: str
    width: int
    height: int
    model_version: int
    priority: float
    reasons: dict[str, Any]
    status: str
    proposal: list[dict[str, Any]]
    decision: list[dict[str, Any]] | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (times in ISO 8601)."""
        return {
            "id": self.id,
            "image_oid": self.image_oid,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "model_version": self.model_version,
            "priority": self.priority,
            "reasons": self.reasons,
            "status": self.status,
            "proposal": self.proposal,
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "created_at": self.created_at.isoformat(),
        }


def _select() -> Select[Any]:
    t, decision = schema.review_tasks, schema.labels.alias("decision")
    return select(
        t,
        schema.items.c.name,
        schema.images.c.width,
        schema.images.c.height,
        decision.c.boxes.label("decision_boxes"),
    ).select_from(
        t.join(schema.items, schema.items.c.image_oid == t.c.image_oid)
        .join(schema.images, schema.images.c.oid == t.c.image_oid)
        .outerjoin(decision, decision.c.id == t.c.decision_id)
    )


def _task(row: Any) -> Task:
    reasons = dict(row.reasons)
    proposal = list(reasons.pop("proposal", []))
    return Task(
        id=int(row.id),
        image_oid=row.image_oid,
        name=row.name,
        width=int(row.width),
        height=int(row.height),
        model_version=int(row.model_version),
        priority=float(row.priority),
        reasons=reasons,
        status=row.status,
        proposal=proposal,
        decision=None if row.decision_boxes is None else records(labelset.parse(row.decision_boxes)),
        decided_by=row.decided_by,
        decided_at=aware(row.decided_at) if row.decided_at else None,
        created_at=aware(row.created_at),
    )


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise UsageError(f"no review task status {status!r}", fix=f"use one of {', '.join(STATUSES)}")


def get_task(ws: Workspace, task_id: int) -> Task:
    """The review task ``task_id``; :class:`TaskNotFoundError` when there is none."""
    with ws.engine.connect() as conn:
        row = conn.execute(_select().where(schema.review_tasks.c.id == task_id)).first()
    if row is None:
        raise TaskNotFoundError(
            f"no review task {task_id}", where=str(ws.root), fix="list them with `visionloop review list`"
        )
    return _task(row)


def next_task(ws: Workspace, *, skip_ids: Collection[int] = ()) -> Task | None:
    """The pending task of highest priority; when none is left, the skipped task skipped longest ago.

    ``skip_ids``: tasks not to hand out (e.g. the ones a reviewer already has open)."""
    t = schema.review_tasks
    orders = {
        "pending": (t.c.priority.desc(), t.c.id),
        "skipped": (t.c.decided_at, t.c.priority.desc(), t.c.id),
    }
    with ws.engine.connect() as conn:
        for status, order in orders.items():
            q = _select().where(t.c.status == status)
            if skip_ids:
                q = q.where(t.c.id.notin_(list(skip_ids)))
            row = conn.execute(q.order_by(*order).limit(1)).first()
            if row is not None:
                return _task(row)
    return None


def list_tasks(ws: Workspace, *, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Task]:
    """Tasks in queue order (priority first; skipped ones by when they were skipped; decided ones
    newest decision first), optionally only those with ``status``."""
    if limit < 1 or offset < 0:
        raise UsageError(f"limit {limit} / offset {offset} out of range", fix="use limit ≥ 1 and offset ≥ 0")
    t = schema.review_tasks
    q = _select()
    if status is None or status == "pending":
        order: Sequence[Any] = (t.c.priority.desc(), t.c.id)
    elif status == "skipped":
        order = (t.c.decided_at, t.c.priority.desc(), t.c.id)
    else:
        order = (t.c.decided_at.desc(), t.c.id.desc())
    if status is not None:
        _check_status(status)
        q = q.where(t.c.status == status)
    with ws.engine.connect() as conn:
        return [_task(r) for r in conn.execute(q.order_by(*order).limit(limit).offset(offset))]


def queue_stats(ws: Workspace) -> dict[str, Any]:
    """Tasks per status, how many are left (pending + skipped) and how many people decided."""
    t = schema.review_tasks
    with ws.engine.connect() as conn:
        rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
    counts: dict[str, int] = {str(r[0]): int(r[1]) for r in rows}
    by_status = {s: counts.get(s, 0) for s in STATUSES}
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "pending": by_status["pending"],
        "left": by_status["pending"] + by_status["skipped"],
        "reviewed": by_status["accepted"] + by_status["edited"] + by_status["rejected"],
    }


def image_bytes(ws: Workspace, task_id: int) -> tuple[bytes, str]:
    """The stored image of a task and its MIME type."""
    task = get_task(ws, task_id)
    with ws.engine.connect() as conn:
        fmt = conn.execute(
            select(schema.images.c.format).where(schema.images.c.oid == task.image_oid)
        ).scalar_one()
    return ws.blobs.get(task.image_oid), _MIME.get(str(fmt).upper(), "application/octet-stream")


def _proposal_boxes(ws: Workspace, task_id: int) -> list[Box]:
    t, labels = schema.review_tasks, schema.labels
    with ws.engine.connect() as conn:
        text = conn.execute(
            select(labels.c.boxes)
            .select_from(t.join(labels, labels.c.id == t.c.proposal_id))
            .where(t.c.id == task_id)
        ).scalar_one()
    return labelset.parse(text)


def _apply(
    ws: Workspace, task: Task, decision: str, reviewer: str, boxes: list[Box] | None, expected: str
) -> bool:
    """The decision in one transaction; False when the task's status is no longer ``expected``."""
    t, items, labels = schema.review_tasks, schema.items, schema.labels
    now = utcnow()
    with ws.engine.begin() as conn:
        # The compare-and-set comes first: it takes the write lock, so the loser waits, then matches nothing.
        won = conn.execute(
            update(t)
            .where(t.c.id == task.id, t.c.status == expected)
            .values(status=DECISIONS[decision], decided_by=reviewer, decided_at=now)
        )
        if won.rowcount != 1:
            return False
        if boxes is not None:
            prev = conn.execute(select(t.c.decision_id, t.c.proposal_id).where(t.c.id == task.id)).one()
            parent = prev.decision_id or prev.proposal_id
            row = labelset.row(task.image_oid, boxes, now, parent_id=parent, origin="review", author=reviewer)
            lid = int(conn.execute(insert(labels).returning(labels.c.id), [row]).scalar_one())
            conn.execute(update(t).where(t.c.id == task.id).values(decision_id=lid))
            conn.execute(
                update(items)
                .where(items.c.image_oid == task.image_oid)
                .values(labels_id=lid, status="labeled", updated_at=now)
            )
        elif decision == "reject":
            conn.execute(update(t).where(t.c.id == task.id).values(decision_id=None))
            conn.execute(
                update(items)
                .where(items.c.image_oid == task.image_oid)
                .values(labels_id=None, status="rejected", updated_at=now)
            )
    return True


def decide(
    ws: Workspace,
    task_id: int,
    decision: str,
    *,
    reviewer: str,
    boxes: list[dict[str, Any]] | None = None,
    expected_status: str = "pending",
) -> Task:
    """Decide a task (see the module docstring) and return it as it is now.

    ``boxes`` (``edit`` only): ``[{"class", "box": [x1, y1, x2, y2]}]`` in image pixels, checked
    by :func:`~visionloop.review.boxes.check_boxes`. ``expected_status``: the status the task
    must have — ``pending`` by default; ``skipped`` to decide a skipped task; a decided status to
    decide it anew."""
    if decision not in DECISIONS:
        raise UsageError(f"no review decision {decision!r}", fix=f"use one of {', '.join(DECISIONS)}")
    who = reviewer.strip() if isinstance(reviewer, str) else ""
    if not who or len(who) > 200:
        raise UsageError("a decision needs the reviewer's name (1-200 characters)", fix="pass --by NAME")
    _check_status(expected_status)
    if decision == "skip" and expected_status not in ("pending", "skipped"):
        raise UsageError(
            f"a task that is {expected_status} cannot be skipped",
            fix="accept, edit or reject it anew instead",
        )
    if (boxes is not None) != (decision == "edit"):
        raise UsageError(
            "boxes go with an edit, and only with an edit",
            where=f"review task {task_id}",
            fix="use `edit` with boxes, or accept / reject / skip without them",
        )
    task = get_task(ws, task_id)
    new: list[Box] | None = None
    if decision == "edit":
        tolerance = ws.settings.import_.box_tolerance_px
        where = f"review task {task_id} ({task.name})"
        new = check_boxes(boxes, ws.classes(), task.width, task.height, tolerance=tolerance, where=where)
    elif decision == "accept":
        new = _proposal_boxes(ws, task_id)
    if task.status != expected_status or not _apply(ws, task, decision, who, new, expected_status):
        now = get_task(ws, task_id)
        by = f" by {now.decided_by}" if now.decided_by else ""
        raise TaskConflictError(
            f"review task {task_id} is {now.status}{by}, not {expected_status}: it was not decided again",
            where=f"review task {task_id} ({now.name})",
            fix="take the next task with `visionloop review next`"
            if expected_status == "pending"
            else f"decide it with the status it has now ({now.status})",
        )
    return get_task(ws, task_id)
