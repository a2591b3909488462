"""The routing policy (pure): how much a person's look at one image's proposals is worth.

An image's priority is a weighted sum of five components, each in [0, 1]:

- ``balance``: how unsure the model is of each class it proposes, with every class weighted by
  its rarity in the labeled data — mAP averages over classes, so one box of a class with 80
  labeled boxes is worth as much as twenty of a class with 1,600. Per class, the mean over its
  boxes of ``1 − |2·score − 1|`` (1 at a coin-flip score, 0 at certainty); the classes' values
  averaged with weights ``most frequent count / the class's count`` (a class with no labeled box
  weighs as much as the most frequent count). An image whose rare-class boxes are confident ranks
  low however many ambiguous boxes of a common class it has;
- ``ambiguous``: the share of its proposed boxes whose score lies in the ambiguous band
  (``band[0] <= score < band[1]``);
- ``uncertainty``: 1 − the top score (1 when the model proposes no box at all);
- ``disagreement``: how differently the model sees the horizontally flipped image (its boxes
  mapped back): matched boxes (same class, IoU ≥ ``match_iou``) cost 1 − IoU, unmatched ones
  cost 1, averaged over the objects of both runs;
- ``rarity``: the rarest proposed class's rarity, 1 − its box count in the labeled data / the
  most frequent class's count (1 for a class with no labeled box yet; 0 with no labeled data).

Auto-accept (off unless ``auto_accept`` is set): an image with at least one proposal, every
score ≥ the bound, and every box found again in the flipped run (nothing unmatched) may skip
the queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from visionloop.errors import UsageError

XYXY = tuple[float, float, float, float]

#: The components of a priority, in the order they are reported.
COMPONENTS = ("balance", "ambiguous", "uncertainty", "disagreement", "rarity")


@dataclass(frozen=True)
class Proposal:
    """One proposed box: class name, xyxy pixels, the model's score."""

    class_name: str
    box: XYXY
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``{"class", "box", "score"}``."""
        return {"class": self.class_name, "box": list(self.box), "score": self.score}


def _default_weights() -> dict[str, float]:
    return {"balance": 1.0, "ambiguous": 0.25, "uncertainty": 0.25, "disagreement": 0.25, "rarity": 0.0}


@dataclass(frozen=True)
class RoutingPolicy:
    """The routing settings: the ambiguous score band, component weights, auto-accept bound."""

    band: tuple[float, float] = (0.2, 0.6)
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    match_iou: float = 0.5
    auto_accept: float | None = None

    def __post_init__(self) -> None:
        lo, hi = self.band
        if not 0.0 <= lo < hi <= 1.0:
            raise UsageError(
                f"the ambiguous score band {lo}–{hi} is not an interval inside [0, 1]",
                fix="give a band such as 0.2–0.6",
            )
        unknown = sorted(set(self.weights) - set(COMPONENTS))
        if unknown:
            raise UsageError(
                f"unknown routing weight(s): {', '.join(unknown)}", fix=f"use {', '.join(COMPONENTS)}"
            )
        if not 0.0 < self.match_iou <= 1.0:
            raise UsageError(f"match IoU {self.match_iou} is outside (0, 1]", fix="use a value such as 0.5")
        if self.auto_accept is not None and not 0.0 < self.auto_accept <= 1.0:
            raise UsageError(
                f"the auto-accept bound {self.auto_accept} is outside (0, 1]",
                fix="give a score such as 0.9, or leave auto-accept off",
            )


@dataclass(frozen=True)
class Routing:
    """A priority (higher: more worth a look), its components and whether it may be auto-accepted."""

    priority: float
    reasons: dict[str, float]
    matched: int
    unmatched: int
    auto_accept: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored with a review task."""
        return {
            **self.reasons,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "auto_accept": self.auto_accept,
        }


def iou(a: XYXY, b: XYXY) -> float:
    """Intersection over union of two xyxy boxes (0 when either is empty)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def unflip(proposals: Sequence[Proposal], width: float) -> list[Proposal]:
    """Boxes found on the horizontally flipped image, mapped back onto the original."""
    return [
        Proposal(p.class_name, (width - p.box[2], p.box[1], width - p.box[0], p.box[3]), p.score)
        for p in proposals
    ]


def match(a: Sequence[Proposal], b: Sequence[Proposal], min_iou: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of same-class boxes by IoU (highest first): ``(i, j, iou)``."""
    pairs = sorted(
        (
            (iou(p.box, q.box), i, j)
            for i, p in enumerate(a)
            for j, q in enumerate(b)
            if p.class_name == q.class_name
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for v, i, j in pairs:
        if v < min_iou:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j, v))
    return out


def disagreement(
    a: Sequence[Proposal], b: Sequence[Proposal], min_iou: float = 0.5
) -> tuple[float, int, int]:
    """``(disagreement, matched, unmatched)`` of two runs' boxes on one image (see the module docstring)."""
    pairs = match(a, b, min_iou)
    unmatched = len(a) + len(b) - 2 * len(pairs)
    objects = len(pairs) + unmatched
    if objects == 0:
        return 0.0, 0, 0
    cost = sum(1.0 - v for _, _, v in pairs) + unmatched
    return cost / objects, len(pairs), unmatched


def rarity(class_names: Sequence[str], frequency: Mapping[str, int]) -> float:
    """The rarest of ``class_names`` in the labeled data: 1 − its count / the largest count."""
    top = max(frequency.values(), default=0)
    if top <= 0 or not class_names:
        return 0.0
    return max(1.0 - frequency.get(c, 0) / top for c in class_names)


def balance(proposals: Sequence[Proposal], frequency: Mapping[str, int]) -> float:
    """The rarity-weighted mean of the per-class uncertainties of ``proposals`` (module docstring)."""
    by_class: dict[str, list[float]] = {}
    for p in proposals:
        by_class.setdefault(p.class_name, []).append(1.0 - abs(2.0 * p.score - 1.0))
    if not by_class:
        return 0.0
    top = max([*frequency.values(), 1])
    weights = {c: top / frequency[c] if frequency.get(c, 0) > 0 else float(top) for c in by_class}
    total = sum(weights[c] * sum(u) / len(u) for c, u in by_class.items())
    return min(1.0, max(0.0, total / sum(weights.values())))


def route(
    proposals: Sequence[Proposal],
    flipped: Sequence[Proposal] | None,
    frequency: Mapping[str, int],
    policy: RoutingPolicy | None = None,
) -> Routing:
    """The priority of one image's ``proposals``.

    ``flipped``: the model's boxes on the flipped image, already mapped back (:func:`unflip`);
    ``None`` when it was not run (no disagreement measured, never auto-accepted).
    ``frequency``: boxes per class in the labeled data.
    """
    policy = policy or RoutingPolicy()
    scores = [p.score for p in proposals]
    if any(not math.isfinite(s) for s in scores):
        raise UsageError("a proposal has a score that is not a finite number", fix="check the model's output")
    lo, hi = policy.band
    n = len(scores)
    ambiguous = sum(1 for s in scores if lo <= s < hi) / n if n else 0.0
    uncertainty = 1.0 - max(scores) if n else 1.0
    if flipped is None:
        dis, matched, unmatched = 0.0, 0, 0
    else:
        dis, matched, unmatched = disagreement(proposals, flipped, policy.match_iou)
    reasons = {
        "balance": round(balance(proposals, frequency), 6),
        "ambiguous": round(ambiguous, 6),
        "uncertainty": round(min(1.0, max(0.0, uncertainty)), 6),
        "disagreement": round(dis, 6),
        "rarity": round(rarity(sorted({p.class_name for p in proposals}), frequency), 6),
    }
    priority = round(sum(policy.weights.get(k, 0.0) * reasons[k] for k in COMPONENTS), 6)
    bound = policy.auto_accept
    auto = bound is not None and flipped is not None and n > 0 and min(scores) >= bound and unmatched == 0
    return Routing(priority, reasons, matched, unmatched, auto)
