"""Exchange with labeling tools: Label Studio and COCO (CVAT) out, their answers back in as decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from review.conftest import TABLE, ls_answers
from visionloop.errors import DataError, UsageError
from visionloop.review.exchange import export_queue, import_decisions
from visionloop.review.label_studio import from_label_studio
from visionloop.review.queue import decide, list_tasks, queue_stats
from visionloop.store import schema
from visionloop.workspace import Workspace


def _by_table(ws: Workspace, status: str | None = None) -> dict[int, Any]:
    out = {}
    for t in list_tasks(ws, status=status):
        out[TABLE.index(t.proposal)] = t
    return out


def _close(a: list[dict[str, Any]], b: list[dict[str, Any]], tol: float = 0.01) -> bool:
    key = lambda r: (r["class"], r["box"])  # noqa: E731
    a, b = sorted(a, key=key), sorted(b, key=key)
    return len(a) == len(b) and all(
        x["class"] == y["class"] and all(abs(u - v) <= tol for u, v in zip(x["box"], y["box"], strict=True))
        for x, y in zip(a, b, strict=True)
    )


def test_label_studio_export_shape(queue_ws: Workspace, tmp_path: Path) -> None:
    summary = export_queue(
        queue_ws,
        tmp_path / "ls.json",
        "label-studio",
        image_root="http://files/img/",
        images_dir=tmp_path / "img",
    )
    assert summary["tasks"] == 4 and summary["boxes"] == 4
    doc = json.loads((tmp_path / "ls.json").read_text())
    task = next(t for t in doc if t["meta"]["review_task"] == _by_table(queue_ws)[1].id)
    oid = task["data"]["image_oid"]
    assert task["data"]["image"] == f"http://files/img/{oid}.png"
    assert (tmp_path / "img" / f"{oid}.png").is_file()
    assert task["meta"]["image_oid"] == oid and task["meta"]["model_version"] == 3
    pred = task["predictions"][0]
    assert pred["model_version"] == "v3" and pred["score"] == pytest.approx(0.35)
    cross = next(r for r in pred["result"] if r["value"]["rectanglelabels"] == ["cross"])
    assert cross["type"] == "rectanglelabels" and cross["score"] == 0.3
    assert (cross["original_width"], cross["original_height"]) == (64, 64)
    # [33.5, 2.25, 60.0, 30.0] on 64 × 64 in percent
    assert cross["value"]["x"] == pytest.approx(33.5 / 64 * 100)
    assert cross["value"]["y"] == pytest.approx(2.25 / 64 * 100)
    assert cross["value"]["width"] == pytest.approx(26.5 / 64 * 100)
    assert cross["value"]["height"] == pytest.approx(27.75 / 64 * 100)


def test_label_studio_round_trip_keeps_every_box(queue_ws: Workspace, tmp_path: Path) -> None:
    export_queue(queue_ws, tmp_path / "ls.json", "label-studio")
    tasks = json.loads((tmp_path / "ls.json").read_text())
    answers, unanswered, unmatched = from_label_studio(
        ls_answers(tasks), {t["data"]["image_oid"]: (64, 64) for t in tasks}
    )
    assert (unanswered, unmatched) == (0, [])
    for a in answers:  # pure conversion: percent and back
        (task,) = [t for t in list_tasks(queue_ws) if t.image_oid == a.image_oid]
        assert _close(a.boxes, task.proposal, tol=1e-9)

    (tmp_path / "export.json").write_text(json.dumps(ls_answers(tasks)))
    res = import_decisions(queue_ws, tmp_path / "export.json", "label-studio")
    assert res.to_dict()["decided"] == {"accept": 4, "edit": 0, "reject": 0}
    for t in list_tasks(queue_ws, status="accepted"):
        assert t.decided_by == "ann@example.com" and t.decision is not None
        assert _close(t.decision, t.proposal)
    with queue_ws.engine.connect() as conn:
        labels = schema.labels
        rows = conn.execute(select(labels.c.origin, labels.c.author).where(labels.c.origin == "review")).all()
    assert sorted(rows) == [("review", "ann@example.com")] * 4

    again = import_decisions(queue_ws, tmp_path / "export.json", "label-studio")
    assert sum(again.decided.values()) == 0 and again.already_decided == 4


def test_label_studio_edits_rejects_and_unanswered(queue_ws: Workspace, tmp_path: Path) -> None:
    export_queue(queue_ws, tmp_path / "ls.json", "label-studio")
    tasks = json.loads((tmp_path / "ls.json").read_text())
    by_id = {t["meta"]["review_task"]: n for n, t in enumerate(tasks)}
    table = _by_table(queue_ws)
    doc = ls_answers(tasks)
    edited = doc[by_id[table[1].id]]["annotations"][0]
    square = next(r for r in edited["result"] if r["value"]["rectanglelabels"] == ["square"])
    square["value"]["x"] = 25.0  # 16 px on 64
    square["value"]["rectanglelabels"] = ["disc"]
    doc[by_id[table[3].id]]["annotations"][0]["was_cancelled"] = True
    doc[by_id[table[0].id]]["annotations"] = []
    doc[by_id[table[2].id]]["annotations"][0]["result"] = [
        {"type": "choices", "from_name": "verdict", "to_name": "image", "value": {"choices": ["Reject"]}}
    ]
    doc.append({"id": 9, "data": {"image": "/data/upload/other.jpg"}, "annotations": doc[0]["annotations"]})
    (tmp_path / "export.json").write_text(json.dumps(doc))

    res = import_decisions(queue_ws, tmp_path / "export.json", "label-studio", reviewer="lead")
    report = res.to_dict()
    assert report["decided"] == {"accept": 0, "edit": 1, "reject": 2}
    assert (report["unanswered"], report["unmatched"], report["problems"]) == (1, ["task 9"], [])
    now = _by_table(queue_ws)
    assert now[1].status == "edited" and now[1].decided_by == "lead"
    assert (
        now[1].decision is not None and {"class": "disc", "box": [16.0, 10.0, 36.0, 40.0]} in now[1].decision
    )
    assert now[3].status == "rejected" and now[2].status == "rejected" and now[0].status == "pending"


def test_label_studio_rotated_rectangles_and_annotators() -> None:
    oid = "a" * 64
    doc = [
        {
            "data": {"image": f"/data/local-files/?d=img/{oid}.jpg"},
            "annotations": [
                {
                    "completed_by": 3,
                    "updated_at": "2026-01-01",
                    "result": [
                        {
                            "type": "rectanglelabels",
                            "value": {
                                "x": 50,
                                "y": 10,
                                "width": 20,
                                "height": 10,
                                "rotation": 90,
                                "rectanglelabels": ["disc"],
                            },
                        }
                    ],
                },
                {"completed_by": 4, "updated_at": "2025-01-01", "was_cancelled": True},  # older: ignored
            ],
        }
    ]
    (answer,), _, _ = from_label_studio(doc, {oid: (100, 200)})
    assert answer.decision == "edit" and answer.annotator == "label-studio user 3"
    # a 20 × 20 px square at (50, 20) px, rotated 90° clockwise about that corner: x 30–50, y 20–40
    assert answer.boxes == [{"class": "disc", "box": pytest.approx([30.0, 20.0, 50.0, 40.0])}]


def test_coco_round_trip_for_cvat(queue_ws: Workspace, tmp_path: Path) -> None:
    export_queue(queue_ws, tmp_path / "coco.json", "coco")
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["disc", "square", "triangle", "cross"]
    assert len(doc["images"]) == 4 and len(doc["annotations"]) == 4
    table = _by_table(queue_ws)
    cross = next(a for a in doc["annotations"] if a["category_id"] == 4)
    assert cross["bbox"] == [33.5, 2.25, 26.5, 27.75] and cross["image_id"] == table[1].id
    # CVAT renumbers images and annotations; the file names carry the image oids
    for im in doc["images"]:
        for a in doc["annotations"]:
            if a["image_id"] == im["id"]:
                a["image_id"] = im["id"] + 500
        im["id"] += 500
    doc["annotations"] = [a for a in doc["annotations"] if a["category_id"] != 4]  # the cross deleted
    (tmp_path / "cvat.json").write_text(json.dumps(doc))

    with pytest.raises(UsageError, match="names no annotator"):
        import_decisions(queue_ws, tmp_path / "cvat.json", "coco")
    assert queue_stats(queue_ws)["pending"] == 4
    res = import_decisions(queue_ws, tmp_path / "cvat.json", "coco", reviewer="cvat-user")
    assert res.to_dict()["decided"] == {"accept": 3, "edit": 1, "reject": 0}
    now = _by_table(queue_ws)
    assert now[1].status == "edited" and now[1].decision == [
        {"class": "square", "box": [10.0, 10.0, 30.0, 40.0]}
    ]
    assert {t.decided_by for t in now.values()} == {"cvat-user"}


def test_bad_answers_are_reported_and_leave_the_task_open(queue_ws: Workspace, tmp_path: Path) -> None:
    export_queue(queue_ws, tmp_path / "ls.json", "label-studio")
    doc = ls_answers(json.loads((tmp_path / "ls.json").read_text()))
    doc[0]["annotations"][0]["result"] = [
        {
            "type": "rectanglelabels",
            "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["dragon"]},
        }
    ]
    (tmp_path / "export.json").write_text(json.dumps(doc))
    res = import_decisions(queue_ws, tmp_path / "export.json", "label-studio")
    assert sum(res.decided.values()) == 3 and len(res.problems) == 1
    assert "the class 'dragon' is not one of the workspace's classes" in res.problems[0]["error"]
    assert queue_stats(queue_ws)["pending"] == 1


@pytest.mark.parametrize(
    ("content", "fmt", "error", "message"),
    [
        (None, "label-studio", UsageError, "the file to import does not exist"),
        ("{not json", "label-studio", DataError, "the file is not readable JSON"),
        ('{"tasks": []}', "label-studio", DataError, "a Label Studio export is a JSON list of tasks"),
        ("[]", "coco", DataError, "a COCO file is a JSON object"),
        ('{"images": [{"id": 1}]}', "coco", DataError, "the COCO file is malformed"),
        ("[]", "yolo", UsageError, "no exchange format 'yolo'"),
    ],
)
def test_unreadable_files_are_clear_errors(
    queue_ws: Workspace, tmp_path: Path, content: str | None, fmt: str, error: type, message: str
) -> None:
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(error) as exc:
        import_decisions(queue_ws, path, fmt, reviewer="ana")
    assert message in exc.value.message and exc.value.fix


def test_decided_tasks_are_not_exported(queue_ws: Workspace, tmp_path: Path) -> None:
    task = list_tasks(queue_ws)[0]
    decide(queue_ws, task.id, "accept", reviewer="ana")
    summary = export_queue(queue_ws, tmp_path / "coco.json", "coco")
    assert summary["tasks"] == 3
    assert task.id not in {im["id"] for im in json.loads((tmp_path / "coco.json").read_text())["images"]}
