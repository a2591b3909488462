"""The rollout's pure parts: routing (shares, stickiness, validation) and shadow agreement."""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

import pytest

from visionloop.errors import UsageError
from visionloop.serve.rollout import Rollout, Router, parse_mode
from visionloop.serve.shadow import agreement


def _routes(router: Router, n: int, candidate: int | None = 2) -> Counter[str]:
    return Counter(router.route(None, candidate) for _ in range(n))


@pytest.mark.parametrize(
    ("rollout", "candidate", "expected"),
    [
        (Rollout(), 2, {"production": 100}),
        (Rollout("canary", 50), None, {"production": 100}),  # no candidate loaded
        (Rollout("canary", 0), 2, {"production": 100}),
        (Rollout("canary", 100), 2, {"canary": 100}),
        (Rollout("shadow", 100), 2, {"shadow": 100}),
        (Rollout("shadow", 30), 2, {"shadow": 30, "production": 70}),
        (Rollout("canary", 20), 2, {"canary": 20, "production": 80}),
        (Rollout("canary", 12.5), 2, {"canary": 13, "production": 87}),
    ],
)
def test_routes_of_100_requests(rollout: Rollout, candidate: int | None, expected: dict[str, int]) -> None:
    assert dict(_routes(Router(rollout), 100, candidate)) == expected


@pytest.mark.parametrize("percent", [1, 5, 20, 33.3, 50, 80, 99])
def test_every_window_of_1000_requests_holds_the_share(percent: float) -> None:
    """Not by luck: any 1,000 consecutive requests send the candidate within 3 of its share."""
    router = Router(Rollout("canary", percent))
    hits = [router.route(None, 7) == "canary" for _ in range(20_000)]
    sums = [sum(hits[:1000])]
    for i in range(1000, len(hits)):
        sums.append(sums[-1] + hits[i] - hits[i - 1000])
    assert max(abs(s - 10 * percent) for s in sums) <= 3


def test_the_share_holds_across_threads() -> None:
    router = Router(Rollout("canary", 20))
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        mine = _routes(router, 1250)
        with lock:
            seen.update(mine)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(seen.values()) == 10_000 and abs(seen["canary"] - 2000) <= 3


def test_a_device_keeps_its_side_and_raising_the_percent_only_adds_devices() -> None:
    devices = [f"device-{i}" for i in range(5000)]
    low, high = Router(Rollout("canary", 20)), Router(Rollout("canary", 50))
    at20 = {d for d in devices if low.route(d, 2) == "canary"}
    assert all((low.route(d, 2) == "canary") == (d in at20) for d in devices[:500] * 3)
    assert abs(len(at20) - 1000) < 100  # a hash spreads devices evenly
    at50 = {d for d in devices if high.route(d, 2) == "canary"}
    assert at20 < at50 and abs(len(at50) - 2500) < 150
    other = {d for d in devices if low.route(d, 3) == "canary"}  # another candidate: other devices
    assert abs(len(other) - 1000) < 100 and len(other & at20) < 400


def test_set_applies_to_the_next_request() -> None:
    router = Router(Rollout("canary", 100))
    assert router.route(None, 2) == "canary" and router.route("d", 2) == "canary"
    router.set(Rollout())
    assert router.route(None, 2) == "production" and router.route("d", 2) == "production"


@pytest.mark.parametrize(
    ("mode", "percent", "message"),
    [
        ("blue", 10, "unknown rollout mode 'blue'"),
        ("canary", -1, "the rollout percent must be within 0..100, not -1"),
        ("canary", 100.5, "the rollout percent must be within 0..100, not 100.5"),
        ("shadow", math.nan, "the rollout percent must be within 0..100, not nan"),
    ],
)
def test_a_bad_rollout_is_refused(mode: Any, percent: float, message: str) -> None:
    with pytest.raises(UsageError) as err:
        Rollout(mode, percent)
    assert err.value.what == message


def test_parse_mode() -> None:
    assert [parse_mode(m) for m in ("off", "canary", "shadow")] == ["off", "canary", "shadow"]
    with pytest.raises(UsageError, match="use one of off, canary, shadow"):
        parse_mode(None)


def _box(cls: int, x: float, score: float = 0.9) -> dict[str, Any]:
    return {"class_id": cls, "score": score, "box": [x, 0.0, x + 10.0, 10.0]}


@pytest.mark.parametrize(
    ("production", "candidate", "expected"),
    [
        ([], [], 1.0),
        ([_box(0, 0)], [], 0.0),
        ([], [_box(0, 0)], 0.0),
        ([_box(0, 0)], [_box(0, 1)], 1.0),  # IoU 0.82
        ([_box(0, 0)], [_box(1, 0)], 0.0),  # another class
        ([_box(0, 0)], [_box(0, 5)], 0.0),  # IoU 0.33
        ([_box(0, 0), _box(0, 50)], [_box(0, 0)], 0.5),  # one missed
        ([_box(0, 0)], [_box(0, 0), _box(0, 50)], 0.5),  # one extra
        ([_box(0, 0), _box(0, 2)], [_box(0, 1)], 0.5),  # one candidate box matches one box only
    ],
)
def test_agreement(
    production: list[dict[str, Any]], candidate: list[dict[str, Any]], expected: float
) -> None:
    assert agreement(production, candidate) == expected
