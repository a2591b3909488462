from __future__ import annotations

import numpy as np
import pytest

from visionloop.types import Detections


def test_shapes_are_validated() -> None:
    with pytest.raises(ValueError, match="class_id has 1 entries for 2 boxes"):
        Detections(np.zeros((2, 4)), np.zeros(1))
    with pytest.raises(ValueError, match="confidence has 3 entries for 2 boxes"):
        Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(3))


def test_empty_and_indexing() -> None:
    assert len(Detections.empty()) == 0
    d = Detections([[0, 0, 10, 10], [5, 5, 20, 30]], [0, 1], [0.9, 0.4])
    assert len(d[d.confidence > 0.5]) == 1
    assert d.area.tolist() == [100.0, 375.0]
    assert not d.is_crowd.any()


def test_records_round_trip_by_class_name() -> None:
    d = Detections([[1.5, 2, 3, 4]], [1], crowd=[True])
    recs = d.to_records(["cat", "dog"])
    assert recs == [{"box": [1.5, 2.0, 3.0, 4.0], "class": "dog", "crowd": True}]
    assert Detections.from_records(recs, ["cat", "dog"]).equals(d)
