from __future__ import annotations

from typing import Any

import pytest

from visionloop.config import GatesConfig
from visionloop.registry.gates import Check, GateReport, evaluate_gates


def metrics(map50_95: float = 0.45, map50: float = 0.7, **per_class: tuple[float, float]) -> dict[str, Any]:
    """per_class: name=(ap, recall)."""
    return {
        "map50_95": map50_95,
        "map50": map50,
        "map75": 0.4,
        "ar100": 0.6,
        "n_images": 10,
        "per_class": {
            c: {"ap": ap, "ap50": 0.8, "recall": rec, "n_gt": 7} for c, (ap, rec) in per_class.items()
        },
    }


def check(report: GateReport, name: str) -> Check:
    (c,) = [c for c in report.checks if c.name == name]
    return c


CASES = [
    # (id, candidate, production, config, kwargs, check name, status, detail)
    ("floor-zero", metrics(), None, {}, {}, "min_map50_95", "pass", "mAP50-95 0.450 meets the floor 0.000"),
    (
        "map-floor-pass",
        metrics(0.45),
        None,
        {"min_map50_95": 0.45},
        {},
        "min_map50_95",
        "pass",
        "mAP50-95 0.450 meets the floor 0.450",
    ),
    (
        "map-floor-fail",
        metrics(0.212),
        None,
        {"min_map50_95": 0.3},
        {},
        "min_map50_95",
        "fail",
        "mAP50-95 0.212 is 0.088 below the floor 0.300",
    ),
    (
        "map50-floor-fail",
        metrics(map50=0.5),
        None,
        {"min_map50": 0.6},
        {},
        "min_map50",
        "fail",
        "mAP50 0.500 is 0.100 below the floor 0.600",
    ),
    (
        "class-ap-pass",
        metrics(WBC=(0.55, 0.9)),
        None,
        {"min_class_ap": {"WBC": 0.5}},
        {},
        "min_class_ap[WBC]",
        "pass",
        "WBC AP 0.550 meets the floor 0.500",
    ),
    (
        "class-ap-fail",
        metrics(WBC=(0.412, 0.9)),
        None,
        {"min_class_ap": {"WBC": 0.5}},
        {},
        "min_class_ap[WBC]",
        "fail",
        "WBC AP 0.412 is 0.088 below the floor 0.500",
    ),
    (
        "class-ap-missing",
        metrics(RBC=(0.7, 0.9)),
        None,
        {"min_class_ap": {"WBC": 0.5}},
        {},
        "min_class_ap[WBC]",
        "fail",
        "class 'WBC' is missing from the candidate's metrics; its floor is 0.500",
    ),
    (
        "class-recall-fail",
        metrics(WBC=(0.7, 0.6)),
        None,
        {"min_class_recall": {"WBC": 0.75}},
        {},
        "min_class_recall[WBC]",
        "fail",
        "WBC recall 0.600 is 0.150 below the floor 0.750",
    ),
    (
        "class-recall-missing",
        metrics(),
        None,
        {"min_class_recall": {"WBC": 0.75}},
        {},
        "min_class_recall[WBC]",
        "fail",
        "class 'WBC' is missing from the candidate's metrics; its floor is 0.750",
    ),
    ("no-production", metrics(), None, {}, {}, "no_regression", "pass", "no production model"),
    (
        "better-than-production",
        metrics(0.48),
        metrics(0.473),
        {},
        {"production_version": 3},
        "no_regression",
        "pass",
        "mAP50-95 0.480 is 0.007 above production v3 (0.473); allowed drop 0.010",
    ),
    (
        "within-allowed-drop",
        metrics(0.463),
        metrics(0.473),
        {},
        {"production_version": 3},
        "no_regression",
        "pass",
        "mAP50-95 0.463 is 0.010 below production v3 (0.473); allowed drop 0.010",
    ),
    (
        "equal-to-production",
        metrics(0.473),
        metrics(0.473),
        {"max_regression": 0.0},
        {},
        "no_regression",
        "pass",
        "mAP50-95 0.473 equals production (0.473); allowed drop 0.000",
    ),
    (
        "worse-than-production",
        metrics(0.412),
        metrics(0.473),
        {},
        {"production_version": 3},
        "no_regression",
        "fail",
        "mAP50-95 0.412 is 0.061 below production v3 (0.473); allowed drop 0.010",
    ),
    (
        "latency-not-measured",
        metrics(),
        None,
        {"max_latency_ms": 20},
        {},
        "latency_budget",
        "not_run",
        "not measured yet: needs the ONNX export",
    ),
    (
        "latency-within",
        metrics(),
        None,
        {"max_latency_ms": 20},
        {"latency_ms": 12.34},
        "latency_budget",
        "pass",
        "p50 latency 12.3 ms is within the budget 20.0 ms",
    ),
    (
        "latency-over",
        metrics(),
        None,
        {"max_latency_ms": 20},
        {"latency_ms": 25.0},
        "latency_budget",
        "fail",
        "p50 latency 25.0 ms is 5.0 ms over the budget 20.0 ms",
    ),
    (
        "size-not-measured",
        metrics(),
        None,
        {"max_size_mb": 10},
        {},
        "size_budget",
        "not_run",
        "not measured yet: needs the ONNX export",
    ),
    (
        "size-within",
        metrics(),
        None,
        {"max_size_mb": 10},
        {"size_mb": 4.2},
        "size_budget",
        "pass",
        "exported size 4.2 MB is within the budget 10.0 MB",
    ),
    (
        "size-over",
        metrics(),
        None,
        {"max_size_mb": 10},
        {"size_mb": 12.0},
        "size_budget",
        "fail",
        "exported size 12.0 MB is 2.0 MB over the budget 10.0 MB",
    ),
]


@pytest.mark.parametrize(
    ("candidate", "production", "cfg", "kwargs", "name", "status", "detail"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_check(candidate, production, cfg, kwargs, name, status, detail) -> None:
    report = evaluate_gates(candidate, production, GatesConfig(**cfg), **kwargs)
    c = check(report, name)
    assert (c.status, c.detail) == (status, detail)
    assert report.passed is (status != "fail")
    assert report.complete is (status != "not_run")


def test_values_and_thresholds_are_reported() -> None:
    report = evaluate_gates(
        metrics(0.412), metrics(0.473), GatesConfig(min_map50_95=0.3), production_version=3
    )
    assert check(report, "min_map50_95") == Check(
        "min_map50_95", 0.412, 0.3, "pass", "mAP50-95 0.412 meets the floor 0.300"
    )
    regression = check(report, "no_regression")
    assert regression.value == 0.412 and regression.threshold == pytest.approx(0.463)


def test_a_deliberately_worse_candidate_is_refused_with_the_amount() -> None:
    report = evaluate_gates(
        metrics(0.30), metrics(0.50), GatesConfig(max_regression=0.02), production_version=7
    )
    assert not report.passed and report.complete
    assert [c.name for c in report.failed()] == ["no_regression"]
    assert (
        report.failed()[0].detail == "mAP50-95 0.300 is 0.200 below production v7 (0.500); allowed drop 0.020"
    )


def test_an_unmeasured_budget_never_passes_and_leaves_the_report_incomplete() -> None:
    cfg = GatesConfig(max_latency_ms=50, max_size_mb=20)
    report = evaluate_gates(metrics(), None, cfg, size_mb=3.0)
    assert check(report, "latency_budget").status == "not_run"
    assert check(report, "size_budget").status == "pass"
    assert report.passed and not report.complete


def test_budgets_without_a_limit_are_not_checked() -> None:
    names = [c.name for c in evaluate_gates(metrics(), None, GatesConfig(), latency_ms=999.0).checks]
    assert names == ["min_map50_95", "min_map50", "no_regression"]


def test_a_candidate_without_metrics_fails_its_floors() -> None:
    report = evaluate_gates({}, metrics(0.4), GatesConfig(), production_version=1)
    assert [c.status for c in report.checks] == ["fail", "fail", "fail"]
    assert (
        check(report, "min_map50_95").detail == "the candidate's metrics have no mAP50-95; its floor is 0.000"
    )
    assert (
        check(report, "no_regression").detail
        == "the candidate's metrics have no mAP50-95; production v1 has 0.400"
    )


def test_report_round_trips_through_a_dict() -> None:
    cfg = GatesConfig(min_class_ap={"WBC": 0.5}, max_latency_ms=10)
    report = evaluate_gates(metrics(WBC=(0.3, 0.5)), metrics(0.5), cfg)
    assert GateReport.from_dict(report.to_dict()) == report
    assert report.to_dict()["checks"][0] == {
        "name": "min_map50_95",
        "value": 0.45,
        "threshold": 0.0,
        "status": "pass",
        "detail": "mAP50-95 0.450 meets the floor 0.000",
    }
