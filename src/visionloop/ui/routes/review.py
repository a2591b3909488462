"""The review page and its JSON API: the next task, its image, and a person's decision on it.

Every decision goes through :func:`visionloop.review.queue.decide` with the signed-in user as the
reviewer, so the dashboard and ``visionloop review`` record the same thing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from visionloop.review.queue import (
    STATUSES,
    decide,
    get_task,
    image_bytes,
    list_tasks,
    next_task,
    queue_stats,
)
from visionloop.ui.access import Identity, identity
from visionloop.ui.web import page
from visionloop.workspace import Workspace

router = APIRouter()
PAGE_SIZE = 50


class Decision(BaseModel):
    """The body of a decision: ``accept``, ``edit`` (with ``boxes``), ``reject`` or ``skip``."""

    decision: str
    boxes: list[dict[str, Any]] | None = None
    expected_status: str = "pending"


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def queue_summary(ws: Workspace) -> dict[str, Any] | None:
    """How many tasks are left and the count per status (None when there never was a task)."""
    stats = queue_stats(ws)
    if not stats["total"]:
        return None
    return {"left": stats["left"], "counts": {s: n for s, n in stats["by_status"].items() if n}}


def _skip_ids(skip: str) -> list[int]:
    return [int(p) for p in skip.split(",") if p.strip().isdigit()]


@router.get("/review")
def review_page(request: Request) -> Response:
    """The review tool: the image with the proposed boxes to move, resize, add, delete and reclass."""
    return page(request, "review.html")


@router.get("/review/queue")
def queue_page(request: Request, status: str = "", offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The queue: tasks in order with their status, reviewer and reasons."""
    ws = _ws(request)
    tasks = list_tasks(ws, status=status or None, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "queue.html",
        tasks=tasks,
        stats=queue_stats(ws),
        statuses=STATUSES,
        status=status,
        offset=offset,
        page_size=PAGE_SIZE,
    )


@router.get("/api/review/stats")
def stats_api(request: Request) -> dict[str, Any]:
    """Tasks per status and how many are left."""
    return queue_stats(_ws(request))


@router.get("/api/review/next")
def next_api(request: Request, skip: str = "") -> dict[str, Any]:
    """The next task (None when the queue is empty), the queue's counts and the class list."""
    ws = _ws(request)
    task = next_task(ws, skip_ids=_skip_ids(skip))
    return {"task": task.to_dict() if task else None, "stats": queue_stats(ws), "classes": ws.classes()}


@router.get("/api/review/tasks/{task_id}")
def task_api(request: Request, task_id: int) -> dict[str, Any]:
    """One task, the queue's counts and the class list."""
    ws = _ws(request)
    return {"task": get_task(ws, task_id).to_dict(), "stats": queue_stats(ws), "classes": ws.classes()}


@router.get("/api/review/tasks/{task_id}/image")
def task_image(request: Request, task_id: int) -> Response:
    """The image of a task."""
    data, media_type = image_bytes(_ws(request), task_id)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


@router.post("/api/review/tasks/{task_id}/decision")
def decide_api(
    request: Request,
    task_id: int,
    body: Decision,
    who: Annotated[Identity, Depends(identity)],
) -> dict[str, Any]:
    """Record the caller's decision on a task; the task as it is now and the queue's counts."""
    ws = _ws(request)
    task = decide(
        ws,
        task_id,
        body.decision,
        reviewer=who.user.name,
        boxes=body.boxes,
        expected_status=body.expected_status,
    )
    return {"task": task.to_dict(), "stats": queue_stats(ws)}
