"""The routing policy: components, priority and auto-accept as a table."""

from __future__ import annotations

import pytest

from visionloop.errors import UsageError
from visionloop.review.routing import (
    Proposal,
    RoutingPolicy,
    balance,
    disagreement,
    iou,
    rarity,
    route,
    unflip,
)


def P(cls: str, box: tuple[float, float, float, float], score: float) -> Proposal:
    return Proposal(cls, box, score)


A = P("cat", (0, 0, 10, 10), 0.9)
B = P("dog", (20, 0, 30, 10), 0.5)
A_SHIFTED = P("cat", (0, 0, 10, 5), 0.8)  # IoU with A: 0.5
FREQ = {"cat": 100, "dog": 25}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (0, 0, 10, 5), 0.5),
        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 0, 10), (0, 0, 0, 10), 0.0),
    ],
)
def test_iou(a, b, expected) -> None:
    assert iou(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "min_iou", "expected"),
    [
        ([], [], 0.5, (0.0, 0, 0)),
        ([A], [A], 0.5, (0.0, 1, 0)),
        ([A], [A_SHIFTED], 0.5, (0.5, 1, 0)),  # matched at IoU 0.5: cost 0.5 over one object
        ([A], [A_SHIFTED], 0.6, (1.0, 0, 2)),  # under the match IoU: two unmatched objects
        ([A], [], 0.5, (1.0, 0, 1)),
        ([A, B], [A], 0.5, (0.5, 1, 1)),  # one matched perfectly, one unmatched
        ([A], [P("dog", A.box, 0.9)], 0.5, (1.0, 0, 2)),  # another class never matches
    ],
)
def test_disagreement(a, b, min_iou, expected) -> None:
    value, matched, unmatched = disagreement(a, b, min_iou)
    assert (round(value, 6), matched, unmatched) == expected


def test_matching_is_one_to_one_and_greedy_by_iou() -> None:
    # two proposals over one object in the other run: only the better one matches
    a = [P("cat", (0, 0, 10, 10), 0.9), P("cat", (1, 0, 11, 10), 0.8)]
    b = [P("cat", (1, 0, 11, 10), 0.9)]
    value, matched, unmatched = disagreement(a, b)
    assert (matched, unmatched) == (1, 1)
    assert value == pytest.approx(1 / 2)  # the exact match costs 0, the leftover 1, over 2 objects


def test_unflip_mirrors_boxes() -> None:
    assert unflip([P("cat", (0, 5, 10, 20), 0.7)], 64) == [P("cat", (54, 5, 64, 20), 0.7)]


@pytest.mark.parametrize(
    ("classes", "freq", "expected"),
    [
        (["cat"], FREQ, 0.0),  # the most frequent class
        (["dog"], FREQ, 0.75),
        (["cat", "dog"], FREQ, 0.75),  # the rarest one counts
        (["bird"], FREQ, 1.0),  # never labeled yet
        (["bird"], {}, 0.0),  # no labeled data: no information
        ([], FREQ, 0.0),
    ],
)
def test_rarity(classes, freq, expected) -> None:
    assert rarity(classes, freq) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("proposals", "flipped", "reasons", "priority"),
    [
        # one confident box of the common class, found again on the mirror: nothing worth a look
        (
            [A],
            [A],
            {"balance": 0.2, "ambiguous": 0.0, "uncertainty": 0.1, "disagreement": 0.0, "rarity": 0.0},
            0.225,
        ),
        # no box at all: "no confident box" is uncertainty 1
        (
            [],
            [],
            {"balance": 0.0, "ambiguous": 0.0, "uncertainty": 1.0, "disagreement": 0.0, "rarity": 0.0},
            0.25,
        ),
        # a rare class at a coin-flip score, unseen on the mirror
        (
            [B],
            [],
            {"balance": 1.0, "ambiguous": 1.0, "uncertainty": 0.5, "disagreement": 1.0, "rarity": 0.75},
            1.625,
        ),
        # the rare class's doubt weighs four times the common class's confidence (100 vs 25 boxes)
        (
            [A, B],
            [A, B],
            {"balance": 0.84, "ambiguous": 0.5, "uncertainty": 0.1, "disagreement": 0.0, "rarity": 0.75},
            0.99,
        ),
        # the flipped run not measured
        (
            [A],
            None,
            {"balance": 0.2, "ambiguous": 0.0, "uncertainty": 0.1, "disagreement": 0.0, "rarity": 0.0},
            0.225,
        ),
        # a score at the band's top is not ambiguous (the band is [0.2, 0.6)), one at its bottom is
        (
            [P("cat", A.box, 0.6), P("cat", B.box, 0.2)],
            None,
            {"balance": 0.6, "ambiguous": 0.5, "uncertainty": 0.4, "disagreement": 0.0, "rarity": 0.0},
            0.825,
        ),
    ],
)
def test_route_table(proposals, flipped, reasons, priority) -> None:
    r = route(proposals, flipped, FREQ)
    assert r.reasons == pytest.approx(reasons)
    assert r.priority == pytest.approx(priority)
    assert not r.auto_accept  # off by default


def test_route_is_deterministic_and_orders_by_need() -> None:
    easy = route([A], [A], FREQ)
    hard = route([B], [], FREQ)
    assert route([B], [], FREQ) == hard
    assert hard.priority > easy.priority


@pytest.mark.parametrize(
    ("proposals", "flipped", "bound", "auto"),
    [
        ([A], [A], 0.85, True),
        ([A], [A_SHIFTED], 0.85, True),  # matched (IoU 0.5): agreement
        ([A], [], 0.85, False),  # the mirror does not find it
        ([A, B], [A, B], 0.85, False),  # B scores under the bound
        ([A, B], [A, B], 0.5, True),
        ([], [], 0.5, False),  # nothing proposed: never auto-accepted
        ([A], None, 0.5, False),  # agreement not measured
        ([A], [A], None, False),  # auto-accept off
    ],
)
def test_auto_accept(proposals, flipped, bound, auto) -> None:
    r = route(proposals, flipped, FREQ, RoutingPolicy(auto_accept=bound))
    assert r.auto_accept is auto


def test_custom_band_and_weights() -> None:
    policy = RoutingPolicy(band=(0.4, 0.95), weights={"ambiguous": 2.0, "uncertainty": 0.0})
    r = route([A, B], [A, B], FREQ, policy)
    assert r.reasons["ambiguous"] == 1.0
    assert r.priority == pytest.approx(2.0)  # components without a weight count 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"band": (0.6, 0.2)}, "is not an interval"),
        ({"band": (-0.1, 0.5)}, "is not an interval"),
        ({"weights": {"loudness": 1.0}}, "unknown routing weight(s): loudness"),
        ({"auto_accept": 1.5}, "auto-accept bound 1.5 is outside"),
        ({"auto_accept": 0.0}, "auto-accept bound 0.0 is outside"),
        ({"match_iou": 0.0}, "match IoU 0.0 is outside"),
    ],
)
def test_policy_refuses_nonsense(kwargs, message) -> None:
    with pytest.raises(UsageError) as exc:
        RoutingPolicy(**kwargs)
    assert message in exc.value.message


def test_non_finite_score_is_refused() -> None:
    with pytest.raises(UsageError, match="not a finite number"):
        route([P("cat", A.box, float("nan"))], None, FREQ)


def test_balance_puts_a_doubtful_rare_class_before_many_doubtful_common_boxes() -> None:
    freq = {"rbc": 1600, "wbc": 80}
    common = [P("rbc", (i, 0, i + 5, 5), 0.5) for i in range(0, 100, 10)] + [P("wbc", (0, 20, 9, 29), 0.97)]
    rare = [P("rbc", (0, 0, 5, 5), 0.95), P("wbc", (0, 20, 9, 29), 0.45)]
    assert balance(rare, freq) > 0.8 > 0.2 > balance(common, freq)
    assert route(rare, None, freq).priority > route(common, None, freq).priority
    assert balance([], freq) == 0.0
    assert (
        balance([P("new", (0, 0, 5, 5), 0.5)], {}) == 1.0
    )  # nothing labeled yet: every class weighs the same
