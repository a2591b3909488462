"""COCO detection files for CVAT (pure): the proposals out, every image's boxes back in."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from visionloop.errors import DataError
from visionloop.review.answer import Answer, file_name
from visionloop.review.queue import Task


def to_coco(tasks: list[Task], formats: dict[str, str], classes: list[str]) -> dict[str, Any]:
    """A COCO detection file of the tasks' images and their proposals (pure)."""
    ids = {c: i + 1 for i, c in enumerate(classes)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for t in tasks:
        images.append(
            {
                "id": t.id,
                "file_name": file_name(t, formats[t.image_oid]),
                "width": t.width,
                "height": t.height,
            }
        )
        for p in t.proposal:
            x1, y1, x2, y2 = p["box"]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": t.id,
                    "category_id": ids[p["class"]],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    "score": p["score"],
                    "attributes": {"score": p["score"], "model_version": t.model_version},
                }
            )
    return {
        "info": {"description": "visionloop review queue: model proposals"},
        "images": images,
        "categories": [{"id": i, "name": c, "supercategory": ""} for c, i in ids.items()],
        "annotations": anns,
    }


def from_coco(doc: Any, sizes: dict[str, tuple[int, int]]) -> tuple[list[Answer], int, list[str]]:
    """Answers from a COCO file (pure): every image's boxes; ``(answers, 0, unmatched)``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DataError(
            "a COCO file is a JSON object with images, categories and annotations", fix="export COCO 1.0"
        )
    try:
        names = {int(c["id"]): str(c["name"]) for c in doc.get("categories") or []}
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in doc.get("annotations") or []:
            by_image.setdefault(int(a["image_id"]), []).append(a)
        answers, unmatched = [], []
        for im in doc["images"]:
            oid = PurePosixPath(str(im["file_name"])).stem
            where = f"image {im['id']} ({im['file_name']})"
            if oid not in sizes:
                unmatched.append(str(im["file_name"]))
                continue
            boxes = []
            for a in by_image.get(int(im["id"]), []):
                x, y, w, h = (float(v) for v in a["bbox"])
                boxes.append({"class": names.get(int(a["category_id"]), ""), "box": [x, y, x + w, y + h]})
            answers.append(Answer(oid, "edit", boxes, None, where))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"the COCO file is malformed ({type(exc).__name__}: {exc})", fix="export COCO 1.0"
        ) from None
    return answers, 0, unmatched
