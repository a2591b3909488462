"""The review queue: order, decisions as new revisions, compare-and-set, validation, image bytes."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from review.conftest import TABLE, make_queue_ws
from visionloop.data.versions import snapshot
from visionloop.errors import DataError, UsageError
from visionloop.review.autolabel import propose
from visionloop.review.queue import (
    TaskConflictError,
    TaskNotFoundError,
    _apply,
    decide,
    get_task,
    image_bytes,
    list_tasks,
    next_task,
    queue_stats,
)
from visionloop.store import schema
from visionloop.workspace import Workspace


def _item(ws: Workspace, oid: str) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(schema.items).where(schema.items.c.image_oid == oid)).one()


def _label(ws: Workspace, label_id: int) -> Any:
    with ws.engine.connect() as conn:
        return conn.execute(select(schema.labels).where(schema.labels.c.id == label_id)).one()


def _proposal_id(ws: Workspace, task_id: int) -> int:
    with ws.engine.connect() as conn:
        t = schema.review_tasks
        return int(conn.execute(select(t.c.proposal_id).where(t.c.id == task_id)).scalar_one())


def _by_proposal(ws: Workspace) -> dict[int, Any]:
    """Tasks keyed by the index of their proposal in TABLE."""
    out = {}
    for t in list_tasks(ws):
        boxes = [{k: b[k] for k in ("class", "box", "score")} for b in t.proposal]
        out[TABLE.index(boxes)] = t
    return out


def test_queue_order_stats_and_task_fields(queue_ws: Workspace) -> None:
    tasks = list_tasks(queue_ws)
    assert len(tasks) == 4
    assert [t.priority for t in tasks] == sorted((t.priority for t in tasks), reverse=True)
    by = _by_proposal(queue_ws)
    # the image with two ambiguous boxes comes first; the confident single box last
    assert tasks[0].id == by[1].id and tasks[-1].id == by[0].id
    assert by[2].reasons["uncertainty"] == 1.0  # no box at all
    assert by[1].reasons["ambiguous"] == 1.0
    t = by[1]
    assert (t.width, t.height, t.model_version, t.status) == (64, 64, 3, "pending")
    assert t.name == "scene1.png" and t.decision is None and t.decided_by is None
    assert t.proposal == TABLE[1]
    assert next_task(queue_ws) == tasks[0]
    assert next_task(queue_ws, skip_ids=[tasks[0].id]) == tasks[1]
    d = t.to_dict()
    json.dumps(d)
    assert d["proposal"] == TABLE[1] and d["created_at"].endswith("+00:00")
    assert queue_stats(queue_ws) == {
        "total": 4,
        "by_status": {
            "pending": 4,
            "accepted": 0,
            "edited": 0,
            "rejected": 0,
            "skipped": 0,
            "auto_accepted": 0,
        },
        "pending": 4,
        "left": 4,
        "reviewed": 0,
    }


def test_accept_is_a_new_review_revision_whose_parent_is_the_proposal(queue_ws: Workspace) -> None:
    task = _by_proposal(queue_ws)[1]
    proposal_id = _proposal_id(queue_ws, task.id)
    before = _item(queue_ws, task.image_oid)
    assert before.status == "proposed" and before.labels_id == proposal_id
    assert _label(queue_ws, proposal_id).origin == "model:3"
    empty, _ = snapshot(queue_ws, "nothing labeled yet")
    assert empty.n_images == 0  # proposals are not labeled data

    done = decide(queue_ws, task.id, "accept", reviewer="ana")
    assert done.status == "accepted" and done.decided_by == "ana" and done.decided_at is not None
    assert done.decision == [
        {"class": b["class"], "box": b["box"]} for b in sorted(TABLE[1], key=lambda b: b["class"])
    ]
    item = _item(queue_ws, task.image_oid)
    rev = _label(queue_ws, item.labels_id)
    assert item.status == "labeled"
    assert (rev.origin, rev.author, rev.parent_id) == ("review", "ana", proposal_id)
    assert rev.oid == _label(queue_ws, proposal_id).oid  # the same boxes, a new revision
    assert _label(queue_ws, proposal_id).origin == "model:3"  # the proposal is untouched
    v, _ = snapshot(queue_ws, "reviewed")
    assert v.n_images == 1 and v.n_boxes == 2
    assert queue_stats(queue_ws)["by_status"]["accepted"] == 1


def test_edit_stores_the_given_boxes_clipped(queue_ws: Workspace) -> None:
    task = _by_proposal(queue_ws)[1]
    boxes = [
        {"class": "square", "box": [11, 12, 31, 41]},  # moved
        {"class": "disc", "box": [-1.5, 50, 20, 65.5]},  # added, overshooting within tolerance
    ]  # the cross is deleted
    done = decide(queue_ws, task.id, "edit", reviewer="bo", boxes=boxes)
    assert done.status == "edited"
    assert done.decision == [
        {"class": "disc", "box": [0.0, 50.0, 20.0, 64.0]},
        {"class": "square", "box": [11.0, 12.0, 31.0, 41.0]},
    ]
    rev = _label(queue_ws, _item(queue_ws, task.image_oid).labels_id)
    assert (rev.origin, rev.author, rev.parent_id, rev.n_boxes) == (
        "review",
        "bo",
        _proposal_id(queue_ws, task.id),
        2,
    )
    assert get_task(queue_ws, task.id) == done


def test_edit_to_no_boxes_labels_the_image_empty(queue_ws: Workspace) -> None:
    task = _by_proposal(queue_ws)[0]
    done = decide(queue_ws, task.id, "edit", reviewer="ana", boxes=[])
    assert done.decision == [] and _item(queue_ws, task.image_oid).status == "labeled"


def test_reject_and_skip(queue_ws: Workspace) -> None:
    by = _by_proposal(queue_ws)
    rejected = decide(queue_ws, by[3].id, "reject", reviewer="ana")
    item = _item(queue_ws, by[3].image_oid)
    assert rejected.status == "rejected" and rejected.decision is None
    assert (item.status, item.labels_id) == ("rejected", None)

    first = next_task(queue_ws)
    assert first is not None
    skipped = decide(queue_ws, first.id, "skip", reviewer="ana")
    assert skipped.status == "skipped" and _item(queue_ws, first.image_oid).status == "proposed"
    # skipped tasks come after every pending one, and then in the order they were skipped
    order = []
    while (t := next_task(queue_ws, skip_ids=order)) is not None:
        order.append(t.id)
    pending = [t.id for t in list_tasks(queue_ws, status="pending")]
    assert order == [*pending, first.id]
    assert queue_stats(queue_ws)["left"] == 3
    # a skipped task is decided with its status as the expected one
    with pytest.raises(TaskConflictError):
        decide(queue_ws, first.id, "accept", reviewer="bo")
    assert decide(queue_ws, first.id, "accept", reviewer="bo", expected_status="skipped").status == "accepted"
    assert [t.id for t in list_tasks(queue_ws, status="rejected")] == [by[3].id]


def test_decided_tasks_are_not_decided_again_unless_expected(queue_ws: Workspace) -> None:
    task = _by_proposal(queue_ws)[1]
    first = decide(queue_ws, task.id, "accept", reviewer="ana")
    first_rev = _item(queue_ws, task.image_oid).labels_id
    with pytest.raises(TaskConflictError) as exc:
        decide(queue_ws, task.id, "reject", reviewer="bo")
    assert exc.value.message.startswith(f"review task {task.id} is accepted by ana, not pending")
    assert get_task(queue_ws, task.id) == first  # nothing changed
    again = decide(
        queue_ws,
        task.id,
        "edit",
        reviewer="bo",
        boxes=[{"class": "cross", "box": [1, 1, 9, 9]}],
        expected_status="accepted",
    )
    rev = _label(queue_ws, _item(queue_ws, task.image_oid).labels_id)
    assert again.status == "edited" and rev.parent_id == first_rev  # the chain keeps every revision
    assert _label(queue_ws, first_rev).author == "ana"
    with pytest.raises(UsageError, match="cannot be skipped"):
        decide(queue_ws, task.id, "skip", reviewer="bo", expected_status="edited")


@pytest.mark.parametrize("decision", ["accept", "reject", "edit"])
def test_two_reviewers_at_once_one_wins(tmp_path: Path, backend_url: str, decision: str) -> None:
    ws, _, det = make_queue_ws(tmp_path, backend_url)
    try:
        propose(ws, 3, det, min_score=0.25)
        task = next_task(ws)
        assert task is not None
        barrier = threading.Barrier(2)
        outcome: dict[str, Any] = {}

        def review(name: str) -> None:
            barrier.wait()
            try:
                boxes = [{"class": "disc", "box": [1, 1, 5, 5]}] if decision == "edit" else None
                outcome[name] = decide(ws, task.id, decision, reviewer=name, boxes=boxes)
            except TaskConflictError as exc:
                outcome[name] = exc

        threads = [threading.Thread(target=review, args=(n,)) for n in ("ana", "bo")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        winners = [n for n, r in outcome.items() if not isinstance(r, Exception)]
        losers = [r for r in outcome.values() if isinstance(r, TaskConflictError)]
        assert len(winners) == 1 and len(losers) == 1
        assert f"by {winners[0]}, not pending" in losers[0].message
        with ws.engine.connect() as conn:
            labels = schema.labels
            q = select(labels.c.author).where(labels.c.origin == "review")
            reviews = conn.execute(q).scalars().all()
        assert reviews == ([] if decision == "reject" else winners)
        assert get_task(ws, task.id).decided_by == winners[0]
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("boxes", "error", "message"),
    [
        (
            [{"class": "dragon", "box": [1, 1, 5, 5]}],
            DataError,
            "the class 'dragon' is not one of the workspace's classes",
        ),
        (
            [{"class": "disc", "box": [1, 1, float("nan"), 5]}],
            DataError,
            "has a coordinate that is not finite",
        ),
        (
            [{"class": "disc", "box": [1, 1, float("inf"), 5]}],
            DataError,
            "has a coordinate that is not finite",
        ),
        (
            [{"class": "disc", "box": [1, 1, 80, 5]}],
            DataError,
            "reaches outside the 64×64 image by more than 2 px",
        ),
        ([{"class": "disc", "box": [10, 1, 5, 5]}], DataError, "is empty: it needs x1 < x2 and y1 < y2"),
        ([{"class": "disc", "box": [1, 5, 5, 5]}], DataError, "is empty: it needs x1 < x2 and y1 < y2"),
        ([{"class": "disc", "box": [65, 1, 66, 5]}], DataError, "is empty"),  # clipped to nothing
        ([{"class": "disc", "box": [1, 1, 5]}], DataError, "is not four numbers"),
        ([{"class": "disc", "box": [1, 1, "5", 5]}], DataError, "is not four numbers"),
        ([{"class": "disc", "box": [1, 1, True, 5]}], DataError, "is not four numbers"),
        ([{"box": [1, 1, 5, 5]}], DataError, "must be an object with a class name and a box"),
        (["disc"], DataError, "must be an object with a class name and a box"),
        ({"class": "disc"}, UsageError, "the boxes must be a list, not dict"),
    ],
)
def test_edit_validation(queue_ws: Workspace, boxes: Any, error: type, message: str) -> None:
    task = _by_proposal(queue_ws)[1]
    with pytest.raises(error) as exc:
        decide(
            queue_ws,
            task.id,
            "edit",
            reviewer="ana",
            boxes=[{"class": "square", "box": [1, 1, 9, 9]}, *boxes] if isinstance(boxes, list) else boxes,
        )
    assert message in exc.value.message
    assert exc.value.where.startswith(f"review task {task.id} (scene1.png)")
    if isinstance(boxes, list):
        assert exc.value.where.endswith("box 1")  # the first box was fine: the second is named
    assert exc.value.fix
    assert get_task(queue_ws, task.id).status == "pending"  # nothing was written


@pytest.mark.parametrize(
    ("decision", "kwargs", "message"),
    [
        ("approve", {}, "no review decision 'approve'"),
        ("accept", {"reviewer": "  "}, "needs the reviewer's name"),
        ("accept", {"boxes": []}, "boxes go with an edit, and only with an edit"),
        ("edit", {}, "boxes go with an edit, and only with an edit"),
        ("accept", {"expected_status": "done"}, "no review task status 'done'"),
    ],
)
def test_decide_usage_errors(
    queue_ws: Workspace, decision: str, kwargs: dict[str, Any], message: str
) -> None:
    task = next_task(queue_ws)
    assert task is not None
    with pytest.raises(UsageError) as exc:
        decide(queue_ws, task.id, decision, **{"reviewer": "ana", **kwargs})
    assert message in exc.value.message


def test_unknown_task_and_bad_listing(queue_ws: Workspace) -> None:
    with pytest.raises(TaskNotFoundError, match="no review task 999"):
        get_task(queue_ws, 999)
    with pytest.raises(TaskNotFoundError):
        decide(queue_ws, 999, "accept", reviewer="ana")
    with pytest.raises(UsageError, match="no review task status 'done'"):
        list_tasks(queue_ws, status="done")
    with pytest.raises(UsageError):
        list_tasks(queue_ws, limit=0)
    assert len(list_tasks(queue_ws, limit=2)) == 2 and len(list_tasks(queue_ws, limit=2, offset=3)) == 1


def test_the_compare_and_set_refuses_a_stale_read(queue_ws: Workspace) -> None:
    task = list_tasks(queue_ws)[0]
    assert _apply(queue_ws, task, "accept", "ana", [], "pending")
    assert not _apply(queue_ws, task, "reject", "bo", None, "pending")  # read as pending, decided since
    assert get_task(queue_ws, task.id).decided_by == "ana"


def test_image_bytes_are_the_stored_image(tmp_path: Path) -> None:
    ws, paths, det = make_queue_ws(tmp_path)
    with ws:
        propose(ws, 3, det, min_score=0.25)
        task = _by_proposal(ws)[2]
        data, mime = image_bytes(ws, task.id)
        assert mime == "image/png" and data == paths[2].read_bytes()


def test_empty_queue(ws: Workspace) -> None:
    assert next_task(ws) is None and list_tasks(ws) == []
    assert queue_stats(ws)["total"] == 0
