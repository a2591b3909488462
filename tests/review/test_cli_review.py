"""``visionloop autolabel`` and ``visionloop review …`` end to end on a real tiny production model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _helpers import run_cli
from review.conftest import ls_answers


def _close(a: list[dict[str, Any]], b: list[dict[str, Any]], tol: float = 0.01) -> bool:
    key = lambda r: (r["class"], r["box"])  # noqa: E731
    a, b = sorted(a, key=key), sorted(b, key=key)
    return len(a) == len(b) and all(
        x["class"] == y["class"] and all(abs(u - v) <= tol for u, v in zip(x["box"], y["box"], strict=True))
        for x, y in zip(a, b, strict=True)
    )


@pytest.fixture
def vl(prod_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``vl(*args)`` runs ``visionloop -w PROJECT ARGS``: (exit code, stdout, stderr)."""
    monkeypatch.delenv("VISIONLOOP_WORKSPACE", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, monkeypatch, "-w", str(prod_project), *args)

    return run


def _json(result: tuple[int, str, str]) -> Any:
    code, out, err = result
    assert code == 0, err
    return json.loads(out)


def test_autolabel_then_review_every_way(vl: Any, tmp_path: Path) -> None:
    res = _json(vl("autolabel", "--min-score", "0.3", "--json"))
    assert res["images_proposed"] == 6 and res["tasks_created"] == 6 and res["auto_accepted"] == 0
    assert _json(vl("autolabel", "--json"))["candidates"] == 0  # idempotent
    assert _json(vl("review", "stats", "--json"))["pending"] == 6

    first = _json(vl("review", "next", "--json"))
    listed = _json(vl("review", "list", "--json"))
    assert next(t["id"] for t in listed) == first["id"] and len(listed) == 6
    ids = [t["id"] for t in listed]

    accepted = _json(vl("review", "accept", str(ids[0]), "--by", "ana", "--json"))
    assert accepted["status"] == "accepted" and accepted["decided_by"] == "ana"
    assert _close(accepted["decision"], accepted["proposal"])

    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"class": "disc", "box": [2, 3, 20, 30]}]))
    edited = _json(vl("review", "edit", str(ids[1]), "--by", "bo", "--boxes", str(boxes), "--json"))
    assert edited["status"] == "edited" and edited["decision"] == [
        {"class": "disc", "box": [2.0, 3.0, 20.0, 30.0]}
    ]
    assert _json(vl("review", "reject", str(ids[2]), "--by", "ana", "--json"))["status"] == "rejected"
    assert _json(vl("review", "skip", str(ids[3]), "--by", "ana", "--json"))["status"] == "skipped"
    assert [t["id"] for t in _json(vl("review", "list", "--status", "skipped", "--json"))] == [ids[3]]
    stats = _json(vl("review", "stats", "--json"))
    assert stats["by_status"]["accepted"] == 1 and stats["left"] == 3 and stats["reviewed"] == 3

    # a decided task is not decided again by mistake; --redo makes a new revision
    code, _out, err = vl("review", "accept", str(ids[1]), "--by", "cy")
    assert code == 2 and f"review task {ids[1]} is edited by bo already" in err and "--redo" in err
    assert "Traceback" not in err
    redone = _json(vl("review", "accept", str(ids[1]), "--by", "cy", "--redo", "--json"))
    assert redone["status"] == "accepted" and redone["decided_by"] == "cy"

    # the rest through Label Studio: export, answer as proposed, import
    out_file = tmp_path / "ls.json"
    summary = _json(
        vl("review", "export", str(out_file), "--format", "label-studio", "--image-root", "/img", "--json")
    )
    assert summary["tasks"] == 3  # two pending, one skipped
    tasks = json.loads(out_file.read_text())
    (tmp_path / "answers.json").write_text(json.dumps(ls_answers(tasks, annotator={"email": "x@y"})))
    report = _json(
        vl(
            "review",
            "import",
            str(tmp_path / "answers.json"),
            "--format",
            "label-studio",
            "--by",
            "dee",
            "--json",
        )
    )
    assert report["decided"] == {"accept": 3, "edit": 0, "reject": 0}
    for t in _json(vl("review", "list", "--status", "accepted", "--json")):
        assert _close(t["decision"], t["proposal"])  # every real box survived the round trip
        assert t["decided_by"] in ("ana", "cy", "dee")
    assert _json(vl("review", "stats", "--json"))["left"] == 0
    assert _json(vl("review", "next", "--json")) is None

    coco = _json(vl("review", "export", str(tmp_path / "c.json"), "--format", "coco", "--json"))
    assert coco["tasks"] == 0


def test_human_output(vl: Any, tmp_path: Path) -> None:
    code, out, _err = vl("autolabel", "--auto-accept", "0.99", "--limit", "3")
    assert code == 0 and "images proposed" in out and "auto-accepted" in out
    code, out, _ = vl("review", "next")
    assert code == 0 and "Review task" in out and "proposal" in out and "priority" in out
    code, out, _ = vl("review", "stats")
    assert code == 0 and "3 left to review" in out
    code, out, _ = vl("review", "list")
    assert code == 0 and "Review tasks" in out
    code, out, _ = vl("review", "export", str(tmp_path / "c.json"), "--format", "coco")
    assert code == 0 and "Wrote 3 tasks" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["autolabel", "--alias", "staging"], 7, "alias 'staging' names no model version"),
        (["autolabel", "--limit", "0"], 2, "--limit 0 is not a positive number of images"),
        (["review", "accept", "999", "--by", "ana"], 2, "no review task 999"),
        (
            ["review", "edit", "1", "--by", "ana", "--boxes", "missing.json"],
            2,
            "the boxes file does not exist",
        ),
        (["review", "export", "o.json", "--format", "yolo"], 2, "no exchange format 'yolo'"),
        (
            ["review", "import", "missing.json", "--format", "coco", "--by", "x"],
            2,
            "the file to import does not exist",
        ),
        (["review", "list", "--status", "done"], 2, "no review task status 'done'"),
    ],
)
def test_user_mistakes_are_messages_and_exit_codes(
    vl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    got, out, err = vl(*args)
    assert got == code and message in err and "Traceback" not in err
    got, out, _ = vl(*args, "--json")
    assert got == code and message in json.loads(out)["what"]


def test_bad_edit_boxes_exit_5(vl: Any, tmp_path: Path) -> None:
    _json(vl("autolabel", "--limit", "1", "--json"))
    task = _json(vl("review", "next", "--json"))
    for content, message in (
        (
            '[{"class": "dragon", "box": [1, 1, 5, 5]}]',
            "the class 'dragon' is not one of the workspace's classes",
        ),
        ('[{"class": "disc", "box": [9, 1, 5, 5]}]', "is empty: it needs x1 < x2 and y1 < y2"),
        ("[{", "the boxes file is not readable JSON"),
    ):
        (tmp_path / "b.json").write_text(content)
        code, _, err = vl(
            "review", "edit", str(task["id"]), "--by", "ana", "--boxes", str(tmp_path / "b.json")
        )
        assert code == 5 and message in err and "Traceback" not in err
    assert _json(vl("review", "stats", "--json"))["pending"] == 1
