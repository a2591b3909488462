"""The drift tests: PSI, KS and MMD against known answers, and the window decision."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.monitor.drift import DriftPolicy, decide, ks_2samp, mmd_test, psi, share_psi
from visionloop.monitor.features import EMBEDDING_DIM, STATS, FeatureTable


def test_psi_of_identical_samples_is_zero_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    shifts = [psi(ref, rng.normal(mu, 1, 5000)) for mu in (0.0, 0.25, 0.5, 1.0)]
    assert shifts[0] < 0.02 < shifts[1] < shifts[2] < shifts[3]
    assert shifts[3] > 0.8


@pytest.mark.parametrize(
    ("ref", "cur", "expected"),
    [
        ([0.5, 0.5], [0.5, 0.5], 0.0),
        ([0.5, 0.5], [0.9, 0.1], 0.4 * np.log(0.9 / 0.5) - 0.4 * np.log(0.1 / 0.5)),
        ([1.0, 0.0], [1.0, 0.0], 0.0),  # an empty bin on both sides adds nothing
    ],
)
def test_share_psi_table(ref: list[float], cur: list[float], expected: float) -> None:
    assert share_psi(np.array(ref), np.array(cur)) == pytest.approx(expected, abs=1e-9)


def test_psi_with_constant_reference_and_empty_inputs() -> None:
    assert psi(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0)
    assert psi(np.full(100, 3.0), np.full(50, 4.0)) > 5  # every value left the reference's only bin
    assert psi(np.array([]), np.array([1.0])) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ([1, 2, 3], [1, 2, 3], 0.0),
        ([1, 2, 3], [4, 5, 6], 1.0),
        ([1, 2, 3, 4], [3, 4, 5, 6], 0.5),
    ],
)
def test_ks_statistic_table(a: list[float], b: list[float], d: float) -> None:
    got, p = ks_2samp(np.array(a, float), np.array(b, float))
    assert got == pytest.approx(d)
    assert 0.0 <= p <= 1.0


def test_ks_p_values_match_known_values() -> None:
    """Against scipy.stats.ks_2samp(method="asymp") figures for D with n = m = 100."""
    # D = 0.2 with n = m = 100: asymptotic p ≈ 0.0366 (Stephens-corrected: 0.0392 ± 0.003)
    a = np.arange(100, dtype=float)
    b = a + 20
    d, p = ks_2samp(a, b)
    assert d == pytest.approx(0.2)
    assert 0.03 < p < 0.045
    rng = np.random.default_rng(1)
    ps = [ks_2samp(rng.normal(size=200), rng.normal(size=200))[1] for _ in range(300)]
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09  # calibrated under the null


def test_mmd_separates_shifted_embeddings_and_not_equal_ones() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(200, 16))
    same = rng.normal(size=(150, 16))
    moved = rng.normal(size=(150, 16)) + 0.4
    _, p_same = mmd_test(ref, same, 200, np.random.default_rng(0))
    stat, p_moved = mmd_test(ref, moved, 200, np.random.default_rng(0))
    assert p_same > 0.05
    assert p_moved < 0.01 and stat > 0
    again = mmd_test(ref, moved, 200, np.random.default_rng(0))
    assert again == (stat, p_moved)  # deterministic for a seed


def _table(
    rng: np.random.Generator, n: int, shift: float = 0.0, classes: tuple[str, ...] = ("a", "b")
) -> FeatureTable:
    stats = rng.normal(size=(n, len(STATS))) + shift
    emb = (rng.normal(size=(n, EMBEDDING_DIM)) + shift).astype(np.float32)
    counts = rng.integers(0, 3, size=(n, len(classes))).astype(np.int32)
    return FeatureTable(stats, counts, emb, classes)


def test_decide_flags_a_shift_and_not_a_same_distribution_window() -> None:
    rng = np.random.default_rng(3)
    ref = _table(rng, 400)
    policy = DriftPolicy()
    calm = [decide(ref, _table(rng, 200), policy, seed=i) for i in range(10)]
    assert not any(r.drifted for r in calm)
    moved = decide(ref, _table(rng, 200, shift=1.0), policy)
    assert moved.drifted
    assert set(moved.flagged) >= {"brightness", "contrast", "embedding"}
    doc = moved.to_dict()
    assert doc["drifted"] is True and doc["tests"]["embedding"]["kind"] == "mmd"
    assert doc["tests"]["brightness"]["threshold"] == {"psi": 0.25, "p_value": 0.01 / len(STATS)}


def test_one_flag_is_not_drift_with_min_flagged_two() -> None:
    rng = np.random.default_rng(4)
    ref = _table(rng, 400)
    cur = _table(rng, 200)
    cur.stats[:, STATS.index("brightness")] += 2.0  # only brightness moves
    assert decide(ref, cur, DriftPolicy(min_flagged=2)).flagged == ["brightness"]
    assert not decide(ref, cur, DriftPolicy(min_flagged=2)).drifted
    assert decide(ref, cur, DriftPolicy(min_flagged=1)).drifted


def test_class_mix_needs_enough_boxes_and_flags_a_new_mix() -> None:
    rng = np.random.default_rng(5)
    ref = _table(rng, 300)
    cur = _table(rng, 200)
    cur.classes[:, 0] = 0  # only class "b" is seen now
    report = decide(ref, cur, DriftPolicy())
    assert report.tests["classes"].flagged
    few = FeatureTable(cur.stats, np.zeros_like(cur.classes), cur.embedding, cur.class_names)
    assert "classes" not in decide(ref, few, DriftPolicy()).tests


def test_short_window_is_not_tested() -> None:
    rng = np.random.default_rng(6)
    report = decide(_table(rng, 300), _table(rng, 20), DriftPolicy(min_window=50))
    assert not report.drifted and report.tests == {}
    assert report.skipped and "20 predictions" in report.skipped
