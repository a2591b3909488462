"""Per-image statistics and embedding, prediction statistics, the feature table's npz round trip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from visionloop.monitor.features import (
    EMBEDDING_DIM,
    EXTRACTOR,
    STATS,
    FeatureTable,
    build_table,
    prediction_stats,
    summarize_image,
    thumbnail,
)


def _noise(size: tuple[int, int], level: float, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = np.clip(rng.normal(128, level, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


@pytest.mark.parametrize(
    ("image", "brightness", "contrast"),
    [
        (Image.new("RGB", (80, 60), (0, 0, 0)), 0.0, 0.0),
        (Image.new("RGB", (80, 60), (255, 255, 255)), 1.0, 0.0),
        (Image.new("RGB", (640, 480), (128, 128, 128)), 128 / 255, 0.0),
    ],
)
def test_flat_images(image: Image.Image, brightness: float, contrast: float) -> None:
    s = summarize_image(image)
    assert s.stats[0] == pytest.approx(brightness, abs=1e-3)
    assert s.stats[1] == pytest.approx(contrast, abs=1e-3)
    assert s.stats[2] == pytest.approx(0.0, abs=1e-6)  # a flat image has no edges
    assert s.embedding.shape == (EMBEDDING_DIM,) and s.embedding.dtype == np.float32


@pytest.mark.parametrize(("size", "aspect"), [((640, 480), 4 / 3), ((100, 200), 0.5), ((5, 5), 1.0)])
def test_size_and_aspect(size: tuple[int, int], aspect: float) -> None:
    s = summarize_image(_noise(size, 20))
    assert s.stats[3] == pytest.approx(np.sqrt(size[0] * size[1]))
    assert s.stats[4] == pytest.approx(aspect)


def test_blur_lowers_sharpness_and_noise_raises_it() -> None:
    base = _noise((320, 240), 40)
    blurred = base.filter(ImageFilter.GaussianBlur(3))
    sharp, soft = summarize_image(base).stats[2], summarize_image(blurred).stats[2]
    assert soft < sharp / 3
    assert summarize_image(_noise((320, 240), 5)).stats[2] < sharp


def test_darker_image_moves_embedding_and_brightness() -> None:
    day = _noise((200, 150), 30)
    night = day.point(lambda v: int(v * 0.45))
    a, b = summarize_image(day), summarize_image(night)
    assert b.stats[0] < a.stats[0] * 0.5
    assert float(np.abs(a.embedding - b.embedding).max()) > 0.2


def test_thumbnail_is_fixed_size_for_any_image() -> None:
    for size in ((640, 480), (64, 64), (10, 300), (1, 1)):
        assert thumbnail(Image.new("RGB", size)).shape == (64, 64, 3)
    assert thumbnail(Image.new("L", (90, 90))).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("scores", "classes", "threshold", "stats", "per_class"),
    [
        ([], [], 0.25, (0.0, 0.0, 0.0), [0, 0, 0]),
        ([0.9, 0.5, 0.1], [0, 2, 1], 0.25, (2.0, 0.7, 0.9), [1, 0, 1]),  # the 0.1 is under threshold
        ([0.3, 0.3], [1, 1], 0.3, (2.0, 0.3, 0.3), [0, 2, 0]),  # at the threshold counts
        ([0.9], [7], 0.25, (1.0, 0.9, 0.9), [0, 0, 0]),  # an unknown class id counts as a box only
    ],
)
def test_prediction_stats(
    scores: list[float], classes: list[int], threshold: float, stats: tuple[float, ...], per_class: list[int]
) -> None:
    got, counts = prediction_stats(scores, classes, 3, threshold)
    assert got == pytest.approx(stats)
    assert counts.tolist() == per_class


def test_feature_table_npz_round_trip() -> None:
    images = [summarize_image(_noise((50, 40), 10 + i, seed=i)) for i in range(3)]
    preds = [prediction_stats([0.5] * i, [i % 2] * i, 2, 0.25) for i in range(3)]
    table = build_table(images, preds, ("a", "b"))
    assert len(table) == 3 and table.stats.shape == (3, len(STATS))
    back, meta = FeatureTable.from_npz(table.to_npz(model_version=4, route="production"))
    assert np.array_equal(back.stats, table.stats) and np.array_equal(back.embedding, table.embedding)
    assert back.class_names == ("a", "b") and back.classes.tolist() == [[0, 0], [0, 1], [2, 0]]
    assert meta == {"model_version": 4, "route": "production", "extractor": EXTRACTOR}
    assert table.column("boxes").tolist() == [0.0, 1.0, 2.0]


def test_digests_give_the_same_summaries_as_images() -> None:
    from visionloop.monitor.features import digest_image, summarize_digests, summarize_images

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)) for _ in range(3)]
    images.append(Image.new("RGB", (40, 30), (10, 20, 30)))  # smaller than the centre crop
    digests = [digest_image(im) for im in images]
    assert digests[0].thumb.shape == (64, 64, 3) and digests[0].crop.shape == (64, 64)
    assert digests[3].crop.shape == (30, 30) and digests[3].size == (40, 30)
    a, b = summarize_images(images), summarize_digests(digests)
    assert [s.stats for s in a] == [s.stats for s in b]
    assert all(np.array_equal(x.embedding, y.embedding) for x, y in zip(a, b, strict=True))
