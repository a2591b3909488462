"""What the server hands to an observer (monitoring) after each prediction.

An observer is called on the request's worker thread right after the model answered; it must
return at once (enqueue, never compute or write) and never raise — the server guards the call
anyway, so a broken observer costs a log line, never a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class Observation:
    model_version: int
    route: str  # production, canary or shadow
    image: Image.Image  # the decoded RGB upload (EXIF orientation applied)
    detections: list[dict[str, Any]]  # as answered: class, class_id, score, box (xyxy pixels)
    seconds: float  # decode + inference
    received_at: float  # time.time() when the request arrived


Observer = Callable[[Observation], None]
