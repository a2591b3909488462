"""A packet carries the digest and the answer, and an image's pixels only when it is sampled."""

from __future__ import annotations

import pickle

import numpy as np
from PIL import Image

from visionloop.monitor.packet import Sample, packet_of
from visionloop.serve.observe import Observation


def _obs(image: Image.Image) -> Observation:
    detections = [
        {"class": "a", "class_id": 0, "score": 0.9, "box": [0, 0, 5, 5]},
        {"class": "b", "class_id": 1, "score": 0.4, "box": [1, 1, 6, 6]},
    ]
    return Observation(3, "canary", image, detections, 0.01, 123.0)


def test_a_packet_is_small_unless_sampled() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    plain = packet_of(_obs(image), sample=False, dropped=4)
    assert plain.key == (3, "canary") and plain.dropped == 4 and plain.sample is None
    assert plain.scores.tolist() == [0.9, 0.4] and plain.class_ids.tolist() == [0, 1]
    assert len(pickle.dumps(plain)) < 20_000  # a 640×480 image is 921,600 bytes of pixels
    sampled = packet_of(_obs(image), sample=True)
    assert sampled.sample is not None
    assert np.array_equal(np.asarray(sampled.sample.image()), np.asarray(image))


def test_sample_round_trip_keeps_mode_and_size() -> None:
    image = Image.new("RGB", (7, 5), (1, 2, 3))
    back = pickle.loads(pickle.dumps(Sample.of(image))).image()
    assert back.mode == "RGB" and back.size == (7, 5) and back.getpixel((6, 4)) == (1, 2, 3)
