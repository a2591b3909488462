"""Drift tests of a window of production predictions against the reference (pure: numpy only).

- every statistic (brightness, contrast, sharpness, size, aspect, boxes, mean and top score):
  the population stability index (PSI, an effect size: how far the histograms moved) and the
  two-sample Kolmogorov-Smirnov test (is the move more than sampling noise?). A statistic is flagged
  only when both say so — PSI ≥ ``psi_threshold`` and the KS p-value below ``alpha`` divided by the
  number of statistics (Bonferroni) — so a tiny shift seen on many samples or a large-looking one
  on a handful does not alarm;
- class mix: PSI of the share of boxes per class (with enough boxes in the window);
- embedding: the maximum mean discrepancy (RBF kernel, median-distance bandwidth, on features
  standardized by the reference) with a permutation p-value, flagged below ``alpha``.

A window is *drifted* when at least ``min_flagged`` tests flag it. With ten tests per window, one
test at α = 1% fires now and then on windows that did not change; a real shift of the input
moves several statistics at once (night: brightness, contrast, noise, embedding, scores), so
asking two of them to agree removes the false alarms and keeps the detections (measured in
bench/monitor.py). Each test's statistic, p-value and threshold is reported, flagged or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from visionloop.monitor.features import STATS, FeatureTable

F64 = NDArray[np.float64]
_EPS = 1e-4  # floor of a bin's share in PSI: an empty bin must not make the index infinite
_PSI_BINS = 10
_MIN_BOXES = 30  # the class-mix test needs this many boxes in the window and the reference
_MMD_REFERENCE = 300  # reference rows the kernel test uses (its cost grows with the square)


@dataclass(frozen=True)
class DriftPolicy:
    """Thresholds of the tests (``[monitor]`` settings)."""

    alpha: float = 0.01
    psi_threshold: float = 0.25
    permutations: int = 200
    min_flagged: int = 2
    min_window: int = 50


@dataclass(frozen=True)
class TestResult:
    name: str  # a statistic, "classes" or "embedding"
    kind: str  # ks_psi, psi, mmd
    statistic: float  # KS D, PSI or MMD²
    p_value: float | None
    psi: float | None
    flagged: bool
    threshold: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "statistic": round(self.statistic, 6),
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "psi": None if self.psi is None else round(self.psi, 6),
            "flagged": self.flagged,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class DriftReport:
    tests: dict[str, TestResult]
    drifted: bool
    skipped: str | None = None  # why no test ran (too few predictions)

    @property
    def flagged(self) -> list[str]:
        return [n for n, t in self.tests.items() if t.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tests": {n: t.to_dict() for n, t in self.tests.items()},
            "flagged": self.flagged,
            "drifted": self.drifted,
            "skipped": self.skipped,
        }


def psi(reference: F64, current: F64, bins: int = _PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference``: bins cut at the reference's
    deciles (fewer when values repeat), Σ (c − r) · ln(c / r) over the bins' shares."""
    ref = np.asarray(reference, np.float64)
    cur = np.asarray(current, np.float64)
    if not len(ref) or not len(cur):
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(x: F64) -> F64:
        # between two edges: an even bin; exactly on an edge: its own odd bin (integer statistics such
        # as boxes per image pile up on their values, and a constant reference still has two sides)
        index = np.searchsorted(edges, x, side="left") + np.searchsorted(edges, x, side="right")
        counts: F64 = np.bincount(index, minlength=2 * len(edges) + 1) / len(x)
        return counts

    return share_psi(shares(ref), shares(cur))


def share_psi(reference_share: F64, current_share: F64) -> float:
    """PSI of two distributions over the same categories (shares summing to 1)."""
    r = np.maximum(np.asarray(reference_share, np.float64), _EPS)
    c = np.maximum(np.asarray(current_share, np.float64), _EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (its alternating series)."""
    if x <= 0.0:
        return 1.0
    if x < 0.2:  # the series converges slowly here, and the answer is 1 to 12 digits
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * x * x)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def ks_2samp(reference: F64, current: F64) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (D, asymptotic p-value with Stephens' small-sample correction).

    Ties (integer statistics such as boxes) make the test conservative, never over-eager."""
    a = np.sort(np.asarray(reference, np.float64))
    b = np.sort(np.asarray(current, np.float64))
    n, m = len(a), len(b)
    if not n or not m:
        return 0.0, 1.0
    values = np.concatenate([a, b])
    d = float(
        np.max(np.abs(np.searchsorted(a, values, "right") / n - np.searchsorted(b, values, "right") / m))
    )
    en = math.sqrt(n * m / (n + m))
    return d, _kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def _standardize(reference: F64, current: F64) -> tuple[F64, F64]:
    mu = reference.mean(axis=0)
    sd = reference.std(axis=0)
    sd[sd < 1e-6] = 1.0
    return (reference - mu) / sd, (current - mu) / sd


def mmd_test(
    reference: F64, current: F64, permutations: int, rng: np.random.Generator
) -> tuple[float, float]:
    """(MMD², permutation p-value) of two samples of embeddings.

    The kernel matrix of the pooled sample is computed once; each permutation is a ±weight vector,
    so all permutations are one matrix product (K @ W) — a few milliseconds for 500 × 500."""
    x, y = _standardize(np.asarray(reference, np.float64), np.asarray(current, np.float64))
    z = np.concatenate([x, y])
    n, m = len(x), len(y)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    off = d2[np.triu_indices(len(z), 1)]
    bandwidth = float(np.median(off)) if len(off) else 1.0
    k = np.exp(-d2 / max(bandwidth, 1e-12))
    w = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(w @ k @ w)
    perms = np.stack([rng.permutation(w) for _ in range(permutations)], axis=1)
    null = np.einsum("ip,ip->p", perms, k @ perms)
    p = (1.0 + float(np.sum(null >= observed - 1e-12))) / (permutations + 1.0)
    return observed, p


def decide(reference: FeatureTable, window: FeatureTable, policy: DriftPolicy, seed: int = 0) -> DriftReport:
    """Every test of ``window`` against ``reference``; drifted when ``policy.min_flagged`` agree."""
    if len(window) < policy.min_window or len(reference) < policy.min_window:
        why = f"{len(window)} predictions in the window, {len(reference)} in the reference; the tests need {policy.min_window}"
        return DriftReport({}, False, skipped=why)
    tests: dict[str, TestResult] = {}
    per_stat_alpha = policy.alpha / len(STATS)
    for name in STATS:
        r, c = reference.column(name), window.column(name)
        d, p = ks_2samp(r, c)
        index = psi(r, c)
        tests[name] = TestResult(
            name,
            "ks_psi",
            d,
            p,
            index,
            bool(index >= policy.psi_threshold and p < per_stat_alpha),
            {"psi": policy.psi_threshold, "p_value": per_stat_alpha},
        )
    ref_boxes, cur_boxes = reference.classes.sum(axis=0), window.classes.sum(axis=0)
    if (
        reference.class_names == window.class_names
        and ref_boxes.sum() >= _MIN_BOXES
        and cur_boxes.sum() >= _MIN_BOXES
    ):
        index = share_psi(ref_boxes / ref_boxes.sum(), cur_boxes / cur_boxes.sum())
        tests["classes"] = TestResult(
            "classes", "psi", index, None, index, index >= policy.psi_threshold, {"psi": policy.psi_threshold}
        )
    rng = np.random.default_rng(seed)
    ref_emb = reference.embedding.astype(np.float64)
    if len(ref_emb) > _MMD_REFERENCE:
        ref_emb = ref_emb[rng.choice(len(ref_emb), _MMD_REFERENCE, replace=False)]
    stat, p = mmd_test(ref_emb, window.embedding.astype(np.float64), policy.permutations, rng)
    tests["embedding"] = TestResult(
        "embedding", "mmd", stat, p, None, p < policy.alpha, {"p_value": policy.alpha}
    )
    flagged = sum(t.flagged for t in tests.values())
    return DriftReport(tests, flagged >= policy.min_flagged)
