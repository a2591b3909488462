"""Label Studio tasks out, Label Studio's JSON export back in (pure).

Out: one task per image; ``data.image`` is ``image_root`` + the exchanged file name; ``data`` and
``meta`` carry the image oid and review task id; the proposal is a ``predictions`` entry of
``rectanglelabels`` results in percent of the image, with the model version and scores.

In: the newest annotation of a task decides it: ``was_cancelled`` (or a ``choices`` answer
"reject") rejects the image, otherwise its rectangles (percent → pixels; a rotated one by its
bounding box) are the boxes. The annotator is ``completed_by``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from visionloop.errors import DataError
from visionloop.review.answer import Answer, file_name
from visionloop.review.queue import Task

_REJECT = {"reject", "rejected"}
_OID_FILE = re.compile(r"([0-9a-f]{64})\.\w+(?:$|[?#&])")


def _url(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}" if root else name


def to_label_studio(tasks: list[Task], formats: dict[str, str], image_root: str = "") -> list[dict[str, Any]]:
    """Label Studio tasks with the proposals as predictions (pure); ``formats``: image oid → format."""
    out = []
    for t in tasks:
        results = []
        for i, p in enumerate(t.proposal):
            x1, y1, x2, y2 = p["box"]
            results.append(
                {
                    "id": f"t{t.id}-{i}",
                    "type": "rectanglelabels",
                    "from_name": "label",
                    "to_name": "image",
                    "original_width": t.width,
                    "original_height": t.height,
                    "image_rotation": 0,
                    "value": {
                        "x": x1 / t.width * 100.0,
                        "y": y1 / t.height * 100.0,
                        "width": (x2 - x1) / t.width * 100.0,
                        "height": (y2 - y1) / t.height * 100.0,
                        "rotation": 0,
                        "rectanglelabels": [p["class"]],
                    },
                    "score": p["score"],
                }
            )
        scores = [float(p["score"]) for p in t.proposal]
        ident: dict[str, Any] = {"image_oid": t.image_oid, "review_task": t.id}
        out.append(
            {
                "data": {"image": _url(image_root, file_name(t, formats[t.image_oid])), "name": t.name}
                | ident,
                "meta": ident | {"model_version": t.model_version, "priority": t.priority},
                "predictions": [
                    {
                        "model_version": f"v{t.model_version}",
                        "score": round(sum(scores) / len(scores), 6) if scores else 0.0,
                        "result": results,
                    }
                ],
            }
        )
    return out


def _annotator(ann: dict[str, Any]) -> str | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        name = who.get("email") or " ".join(str(who.get(k, "")) for k in ("first_name", "last_name")).strip()
        return str(name) if name else (f"label-studio user {who['id']}" if "id" in who else None)
    if isinstance(who, str) and who.strip():
        return who.strip()
    if isinstance(who, int) and not isinstance(who, bool):
        return f"label-studio user {who}"
    return None


def _rect(value: dict[str, Any], width: int, height: int, where: str) -> list[float]:
    """A Label Studio rectangle (percent of the image, rotated clockwise about its top-left corner)
    as pixel xyxy: the rectangle itself, or the smallest upright box holding a rotated one."""
    try:
        x, w = (float(value[k]) / 100.0 * width for k in ("x", "width"))
        y, h = (float(value[k]) / 100.0 * height for k in ("y", "height"))
        rot = math.radians(float(value.get("rotation", 0) or 0))
    except (KeyError, TypeError, ValueError):
        raise DataError(
            "a rectangle without numeric x, y, width, height", where=where, fix="re-export it"
        ) from None
    if rot == 0:
        return [x, y, x + w, y + h]
    c, s = math.cos(rot), math.sin(rot)
    xs = [x + dx * c - dy * s for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    ys = [y + dx * s + dy * c for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    return [min(xs), min(ys), max(xs), max(ys)]


def _ls_oid(task: dict[str, Any]) -> str | None:
    for holder in (task.get("data"), task.get("meta")):
        if isinstance(holder, dict) and isinstance(holder.get("image_oid"), str):
            return str(holder["image_oid"])
    image = (task.get("data") or {}).get("image")
    # the exported file name, also inside Label Studio's upload prefix or a ``?d=`` local-files URL
    found = _OID_FILE.search(image) if isinstance(image, str) else None
    if found:
        return found.group(1)
    return None


def from_label_studio(doc: Any, sizes: dict[str, tuple[int, int]]) -> tuple[list[Answer], int, list[str]]:
    """Answers from Label Studio's JSON export (pure): ``(answers, unanswered, unmatched)``.

    ``sizes``: image oid → (width, height) of the images that have a task; others are unmatched."""
    if not isinstance(doc, list):
        raise DataError("a Label Studio export is a JSON list of tasks", fix="export the project as JSON")
    answers, unanswered, unmatched = [], 0, []
    for n, task in enumerate(doc):
        where = f"task {task.get('id', n) if isinstance(task, dict) else n}"
        oid = _ls_oid(task) if isinstance(task, dict) else None
        if oid is None or oid not in sizes:
            unmatched.append(oid or where)
            continue
        anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        if not anns:
            unanswered += 1
            continue
        ann = max(
            anns, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0)
        )
        results = [r for r in ann.get("result") or [] if isinstance(r, dict)]
        choices = {
            str(c).lower()
            for r in results
            if r.get("type") == "choices"
            for c in (r.get("value") or {}).get("choices") or []
        }
        if ann.get("was_cancelled") or choices & _REJECT:
            answers.append(Answer(oid, "reject", [], _annotator(ann), where))
            continue
        w, h = sizes[oid]
        boxes = []
        for r in results:
            if r.get("type") != "rectanglelabels":
                continue
            value = r.get("value") or {}
            names = value.get("rectanglelabels") or []
            boxes.append({"class": names[0] if names else "", "box": _rect(value, w, h, where)})
        answers.append(Answer(oid, "edit", boxes, _annotator(ann), where))
    return answers, unanswered, unmatched
