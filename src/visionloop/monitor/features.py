"""What monitoring keeps of one prediction (pure: numpy and Pillow only).

Per image: input statistics (brightness, contrast, sharpness, size, aspect), prediction statistics
(boxes, mean and top score, boxes per class) and an embedding from a tiny fixed feature extractor.

Why not the model's backbone: the exported graph has NMS inside and exposes no features, and a second
network per request would cost as much as the request itself. The extractor here is a 4×4 grid of
colour means plus a 4×4 grid of gradient energy on a 64×64 grid of sampled pixels — deterministic, no
weights, no download, about 0.2 ms per 640×480 image on one CPU — which is enough to see lighting, colour, blur,
noise and layout shift, the things that break a detector. The same functions build the reference
(``reference.py``) and the production windows (``recorder.py``), so the two are comparable by
construction; :data:`EXTRACTOR` names the recipe and a reference built with another one is rebuilt.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

#: Bumped whenever a statistic or the embedding changes meaning (references are rebuilt then).
EXTRACTOR = "grid4-v2"
THUMB = 64
GRID = 4
INPUT_STATS: tuple[str, ...] = ("brightness", "contrast", "sharpness", "size", "aspect")
PREDICTION_STATS: tuple[str, ...] = ("boxes", "score_mean", "score_max")
STATS: tuple[str, ...] = INPUT_STATS + PREDICTION_STATS
EMBEDDING_DIM = GRID * GRID * 4  # colour means (3 channels) and gradient energy per cell
_LUMA = np.array([0.299, 0.587, 0.114], np.float32) / 255.0
_CROP = 64  # side of the full-resolution centre crop sharpness is measured on

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class ImageSummary:
    """The input side of one prediction: five statistics and the embedding."""

    stats: tuple[float, float, float, float, float]  # INPUT_STATS order
    embedding: F32  # EMBEDDING_DIM values


def thumbnail(image: Image.Image) -> NDArray[np.uint8]:
    """A THUMB × THUMB RGB array of pixels sampled on a regular grid (nearest neighbour).

    Sampling, not averaging: it reads 4,096 pixels instead of the whole image, so it costs about
    0.01 ms where a box-filter reduction of a 640×480 image costs 0.4 ms — on the server's CPUs, where
    every millisecond is taken from serving. Means over 4,096 samples are as steady as over the
    whole image; the gradient grid sees fine texture aliased, the same way in the reference and in
    production, which is what a drift test compares."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb.resize((THUMB, THUMB), Image.Resampling.NEAREST))


def _centre_crop(image: Image.Image) -> NDArray[np.uint8]:
    """The full-resolution luma of the image's centre, at most _CROP pixels square."""
    w, h = image.size
    side = min(_CROP, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return np.asarray(image.crop((left, top, left + side, top + side)).convert("L"))


def _sharpness(crops: NDArray[np.float32]) -> NDArray[np.float32]:
    """Mean absolute Laplacian of luma on full-resolution centre crops (n × side × side, in [0, 1]):
    blur lowers it, sensor noise raises it. A thumbnail would average both away."""
    if crops.shape[1] < 3:
        return np.zeros(len(crops), np.float32)
    c = crops
    lap = 4 * c[:, 1:-1, 1:-1] - c[:, :-2, 1:-1] - c[:, 2:, 1:-1] - c[:, 1:-1, :-2] - c[:, 1:-1, 2:]
    return np.asarray(np.abs(lap).mean(axis=(1, 2)), np.float32)


@dataclass(frozen=True)
class ImageDigest:
    """What the statistics and the embedding of an image are computed from: its sampled thumbnail,
    its full-resolution centre crop and its size — about 16 KB, cheap to take on a request's thread
    and to send to another process, whatever the image's size."""

    thumb: NDArray[np.uint8]  # THUMB × THUMB × 3
    crop: NDArray[np.uint8]  # at most _CROP × _CROP luma
    size: tuple[int, int]  # width, height


def digest_image(image: Image.Image) -> ImageDigest:
    """The digest of an RGB image (about 0.03 ms for 640×480)."""
    return ImageDigest(thumbnail(image), _centre_crop(image), image.size)


def summarize_digests(digests: Sequence[ImageDigest]) -> list[ImageSummary]:
    """Input statistics and embeddings of many images, computed together: a batch costs a handful of
    numpy calls instead of a handful per image."""
    if not digests:
        return []
    pixels = np.stack([d.thumb for d in digests]).astype(np.float32)  # n × T × T × 3
    n, cell = len(digests), THUMB // GRID
    luma = pixels @ _LUMA  # n × T × T
    colour = pixels.reshape(n, GRID, cell, GRID, cell, 3).mean(axis=(2, 4)).reshape(n, -1) / 255.0
    gx = np.abs(np.diff(luma, axis=2, append=luma[:, :, -1:]))
    gy = np.abs(np.diff(luma, axis=1, append=luma[:, -1:, :]))
    edges = (gx + gy).reshape(n, GRID, cell, GRID, cell).mean(axis=(2, 4)).reshape(n, -1)
    embedding = np.concatenate([colour, edges], axis=1).astype(np.float32)
    brightness, contrast = luma.mean(axis=(1, 2)), luma.std(axis=(1, 2))
    crops = [d.crop for d in digests]
    if len({c.shape for c in crops}) == 1:
        sharp = _sharpness(np.stack(crops).astype(np.float32) / 255.0)
    else:  # images smaller than the crop: each on its own
        sharp = np.array([_sharpness(c[None].astype(np.float32) / 255.0)[0] for c in crops], np.float32)
    out = []
    for i, d in enumerate(digests):
        w, h = d.size
        stats = (
            float(brightness[i]),
            float(contrast[i]),
            float(sharp[i]),
            float(np.sqrt(w * h)),
            float(w / h) if h else 0.0,
        )
        out.append(ImageSummary(stats, embedding[i]))
    return out


def summarize_images(images: Sequence[Image.Image]) -> list[ImageSummary]:
    """Input statistics and embeddings of RGB images (see :func:`summarize_digests`)."""
    return summarize_digests([digest_image(im) for im in images])


def summarize_image(image: Image.Image) -> ImageSummary:
    """Input statistics and embedding of one RGB image."""
    return summarize_images([image])[0]


def prediction_stats(
    scores: Sequence[float] | F64,
    class_ids: Sequence[int] | NDArray[np.int64],
    n_classes: int,
    threshold: float,
) -> tuple[tuple[float, float, float], NDArray[np.int32]]:
    """(boxes, mean score, top score) and boxes per class of the detections at or above ``threshold``.

    The threshold is the bundle's own: a client asking for a lower one must not look like drift."""
    s = np.asarray(scores, np.float64)
    c = np.asarray(class_ids, np.int64)
    keep = s >= threshold
    s, c = s[keep], c[keep]
    c = c[(c >= 0) & (c < n_classes)]
    per_class = np.bincount(c, minlength=n_classes).astype(np.int32)
    if not len(s):
        return (0.0, 0.0, 0.0), per_class
    return (float(len(s)), float(s.mean()), float(s.max())), per_class


def detections_arrays(detections: Sequence[dict[str, Any]]) -> tuple[F64, NDArray[np.int64]]:
    """Scores and class ids of the server's answer (``serve.model.detect``'s dicts)."""
    return (
        np.array([float(d["score"]) for d in detections], np.float64),
        np.array([int(d["class_id"]) for d in detections], np.int64),
    )


@dataclass(frozen=True)
class FeatureTable:
    """One row per prediction: ``stats`` (STATS order), boxes per class, embedding."""

    stats: F64  # (n, len(STATS))
    classes: NDArray[np.int32]  # (n, n_classes)
    embedding: F32  # (n, EMBEDDING_DIM)
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.stats.shape[0])

    def column(self, name: str) -> F64:
        return self.stats[:, STATS.index(name)]

    def to_npz(self, **meta: str | float) -> bytes:
        """The table as ``.npz`` bytes (stored as a blob), with string/number metadata."""
        buf = io.BytesIO()
        arrays: dict[str, Any] = {k: np.array(v) for k, v in meta.items()}
        arrays |= {
            "stats": self.stats,
            "classes": self.classes,
            "embedding": self.embedding,
            "class_names": np.array(self.class_names, dtype=str),
            "stat_names": np.array(STATS, dtype=str),
            "extractor": np.array(EXTRACTOR),
        }
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @staticmethod
    def from_npz(data: bytes) -> tuple[FeatureTable, dict[str, Any]]:
        """The table and its metadata (``extractor`` and what ``to_npz`` was given)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            table = FeatureTable(
                z["stats"].astype(np.float64),
                z["classes"].astype(np.int32),
                z["embedding"].astype(np.float32),
                tuple(str(x) for x in z["class_names"]),
            )
            skip = {"stats", "classes", "embedding", "class_names", "stat_names"}
            meta = {k: z[k].item() for k in z.files if k not in skip}
        return table, meta


def build_table(
    images: Sequence[ImageSummary],
    predictions: Sequence[tuple[tuple[float, float, float], NDArray[np.int32]]],
    class_names: Sequence[str],
) -> FeatureTable:
    """Stack per-image summaries and prediction statistics into a :class:`FeatureTable`."""
    n, k = len(images), len(class_names)
    if len(predictions) != n:
        raise ValueError(f"{n} image summaries but {len(predictions)} prediction statistics")
    stats = np.zeros((n, len(STATS)), np.float64)
    classes = np.zeros((n, k), np.int32)
    embedding = np.zeros((n, EMBEDDING_DIM), np.float32)
    for i, (img, (pred, per_class)) in enumerate(zip(images, predictions, strict=True)):
        stats[i] = (*img.stats, *pred)
        classes[i] = per_class
        embedding[i] = img.embedding
    return FeatureTable(stats, classes, embedding, tuple(class_names))
