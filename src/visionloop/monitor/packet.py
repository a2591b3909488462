"""What the recorder keeps of one prediction: a packet small enough to hand to another process.

A :class:`Packet` holds the image's digest (thumbnail, centre crop, size: ``features.py``), the
answer's scores and class ids, and — only for an image picked for the production sample — its
pixels. Taking one costs about 0.05 ms on the request's thread; everything else (statistics,
windows, drift tests, writes) happens from packets, in the recorder's thread or process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from visionloop.monitor.features import ImageDigest, detections_arrays, digest_image
from visionloop.serve.observe import Observation


@dataclass(frozen=True)
class Sample:
    """The pixels of a sampled production image (raw: encoding is the recorder's work)."""

    mode: str
    size: tuple[int, int]
    data: bytes

    @staticmethod
    def of(image: Image.Image) -> Sample:
        return Sample(image.mode, image.size, image.tobytes())

    def image(self) -> Image.Image:
        return Image.frombytes(self.mode, self.size, self.data)


@dataclass(frozen=True)
class Packet:
    model_version: int
    route: str
    digest: ImageDigest
    scores: NDArray[np.float64]
    class_ids: NDArray[np.int64]
    received_at: float
    sample: Sample | None = None
    dropped: int = 0  # the sender's count of dropped predictions of this (version, route) so far

    @property
    def key(self) -> tuple[int, str]:
        return (self.model_version, self.route)


@dataclass(frozen=True)
class Dropped:
    """The sender's counts of dropped predictions per (version, route), sent before it stops (drops
    after its last packet would otherwise never reach a window)."""

    counts: dict[tuple[int, str], int]


def packet_of(obs: Observation, *, sample: bool, dropped: int = 0) -> Packet:
    """The packet of one observation; ``sample``: keep its pixels for the production sample."""
    scores, class_ids = detections_arrays(obs.detections)
    return Packet(
        obs.model_version,
        obs.route,
        digest_image(obs.image),
        scores,
        class_ids,
        obs.received_at,
        Sample.of(obs.image) if sample else None,
        dropped,
    )
