"""Shadow inference: the candidate answers a copy of a request in the background, never the client.

The production answer goes back first; only then is the copy handed to :class:`ShadowRunner`,
which runs it on its own worker thread, so a client never waits for the candidate and a failing
candidate never fails a request. At most ``max_in_flight`` copies run or wait at once; a copy
beyond that is dropped and counted (``skipped``), so under load shadowing sheds itself instead of
queueing work that would take CPU from production. Each result is logged on the
``visionloop.shadow`` logger: both versions, their box counts and their :func:`agreement`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image

from visionloop.serve.model import Loaded, detect
from visionloop.serve.observe import Observation, Observer

log = logging.getLogger("visionloop.shadow")


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def agreement(
    production: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]], iou: float = 0.5
) -> float:
    """How far two answers agree, in [0, 1]: boxes matched one-to-one (same class, IoU ≥ ``iou``,
    greedily by score) over the larger box count, so a missed box and an extra box both cost.
    Two empty answers agree fully."""
    if not production and not candidate:
        return 1.0
    free = sorted(candidate, key=lambda d: -float(d["score"]))
    matched = 0
    for p in sorted(production, key=lambda d: -float(d["score"])):
        best, best_iou = -1, iou
        for i, c in enumerate(free):
            if c["class_id"] == p["class_id"]:
                v = _iou(p["box"], c["box"])
                if v >= best_iou:
                    best, best_iou = i, v
        if best >= 0:
            matched += 1
            free.pop(best)
    return matched / max(len(production), len(candidate))


@dataclass(frozen=True)
class ShadowResult:
    """One shadow answer, as logged and counted (never returned to a client)."""

    production_version: int
    candidate_version: int
    production_boxes: int
    candidate_boxes: int
    agreement: float
    seconds: float


class ShadowRunner:
    """Runs copies of requests on the candidate in the background; see the module docstring.

    ``on_result`` / ``on_skip`` / ``on_error`` feed the server's counters; ``observer`` gets
    each shadow answer with route ``shadow`` (monitoring compares versions on the same traffic)."""

    def __init__(
        self,
        *,
        max_in_flight: int = 2,
        observer: Observer | None = None,
        on_result: Callable[[ShadowResult], None] | None = None,
        on_skip: Callable[[], None] | None = None,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="shadow")
        self._observer = observer
        self._on_result = on_result
        self._on_skip = on_skip
        self._on_error = on_error

    def submit(
        self,
        candidate: Loaded,
        image: Image.Image,
        threshold: float,
        production_version: int,
        production_detections: list[dict[str, Any]],
        received_at: float,
    ) -> bool:
        """Hand a copy to the candidate; False (counted as skipped) when the shadow slots are full."""
        if not self._slots.acquire(blocking=False):
            if self._on_skip is not None:
                self._on_skip()
            return False
        try:
            self._pool.submit(
                self._run,
                candidate,
                image,
                threshold,
                production_version,
                production_detections,
                received_at,
            )
        except RuntimeError:  # the pool was shut down: the server is stopping
            self._slots.release()
            return False
        return True

    def _run(
        self,
        candidate: Loaded,
        image: Image.Image,
        threshold: float,
        production_version: int,
        production_detections: list[dict[str, Any]],
        received_at: float,
    ) -> None:
        try:
            t0 = time.perf_counter()
            detections = detect(candidate, image, threshold)
            seconds = time.perf_counter() - t0
            result = ShadowResult(
                production_version,
                candidate.version,
                len(production_detections),
                len(detections),
                round(agreement(production_detections, detections), 4),
                seconds,
            )
            log.info(
                "shadow v%s vs production v%s: %d vs %d boxes, agreement %.3f, %.1f ms",
                result.candidate_version,
                result.production_version,
                result.candidate_boxes,
                result.production_boxes,
                result.agreement,
                seconds * 1000,
                extra={"shadow": result},
            )
            if self._on_result is not None:
                self._on_result(result)
        except Exception:  # a shadow answer must never reach, slow or fail a client
            log.exception("the shadow inference on v%s failed", candidate.version)
            if self._on_error is not None:
                self._on_error(candidate.version)
            return
        finally:
            self._slots.release()
        if self._observer is not None:
            try:
                self._observer(
                    Observation(candidate.version, "shadow", image, detections, seconds, received_at)
                )
            except Exception:
                log.exception("the prediction observer failed on a shadow answer")

    def close(self, wait: bool = True) -> None:
        """Stop taking copies and drop those waiting; with ``wait``, let the running ones finish."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
