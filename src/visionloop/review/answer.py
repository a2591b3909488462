"""What a labeling tool's answer for one image is, and the file name an image is exchanged under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visionloop.review.queue import Task

_EXT = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "BMP": ".bmp",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "GIF": ".gif",
}


@dataclass(frozen=True)
class Answer:
    """One image's answer from a labeling tool: a decision and (accept / edit) its pixel boxes."""

    image_oid: str
    decision: str  # accept | edit | reject (accept vs edit is settled against the proposal)
    boxes: list[dict[str, Any]]
    annotator: str | None
    where: str


def file_name(task: Task, fmt: str) -> str:
    """The file name an image is exported under: its oid and its format's extension."""
    return task.image_oid + _EXT.get(fmt.upper(), ".img")
