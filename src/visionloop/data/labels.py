"""Label revisions' canonical form: equal boxes give equal bytes and an equal oid."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from visionloop.data.validate import Box

#: Origins of a labels revision (``model:<version>`` carries the model version).
ORIGINS = ("import", "human", "review")


def canonical(boxes: Sequence[Box]) -> tuple[str, str]:
    """``(json_text, oid)`` of a set of boxes, independent of their order."""
    recs: list[dict[str, Any]] = []
    for x1, y1, x2, y2, cls, crowd in sorted(boxes, key=lambda b: (b[4], b[0], b[1], b[2], b[3], b[5])):
        rec: dict[str, Any] = {"box": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)], "class": cls}
        if crowd:
            rec["crowd"] = True
        recs.append(rec)
    text = json.dumps(recs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode()).hexdigest()


def row(
    image_oid: str,
    boxes: Sequence[Box],
    created_at: datetime,
    *,
    parent_id: int | None = None,
    origin: str = "import",
    author: str | None = None,
) -> dict[str, Any]:
    """A ``labels`` table row for a new revision of the boxes on one image."""
    text, oid = canonical(boxes)
    return {
        "image_oid": image_oid,
        "oid": oid,
        "boxes": text,
        "n_boxes": len(boxes),
        "origin": origin,
        "author": author,
        "parent_id": parent_id,
        "created_at": created_at,
    }


def parse(text: str) -> list[Box]:
    """Boxes of a stored labels revision."""
    return [(*r["box"], r["class"], bool(r.get("crowd", False))) for r in json.loads(text)]


def class_counts(text: str) -> Counter[str]:
    return Counter(r["class"] for r in json.loads(text))
