from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import pytest

from visionloop.config import GatesConfig
from visionloop.data.versions import snapshot
from visionloop.errors import GateError
from visionloop.registry import gate as gate_module
from visionloop.registry.aliases import promote
from visionloop.registry.approvals import reject
from visionloop.registry.gate import gate_model
from visionloop.registry.gates import GateReport
from visionloop.registry.versions import get_model, set_status


class FakeEvaluate:
    """Metrics by model version; records every call."""

    def __init__(self, models, scores: dict[int, float]) -> None:
        self.models, self.scores = models, scores
        self.calls: list[tuple[int, str, str]] = []

    def __call__(self, version: int, dataset_version_id: str, split: str) -> dict[str, Any]:
        self.calls.append((version, dataset_version_id, split))
        return self.models.metrics(self.scores[version])


def gates(ws, **cfg: Any) -> None:
    ws.settings = ws.settings.model_copy(update={"gates": GatesConfig(**cfg)})


@pytest.fixture
def in_production(models) -> int:
    """Version 1 serves production, trained on the first dataset version."""
    v = models()
    set_status(models.ws, v, "approved")
    promote(models.ws, v, actor="ci", reason="first")
    return v


@pytest.fixture
def newer_dataset(models) -> str:
    """A second dataset version (the same items, hash splits instead of the source's)."""
    newer, created = snapshot(models.ws, "rehashed", keep_splits=False)
    assert created and newer.id != models.dataset_version_id
    return newer.id


def test_production_is_evaluated_on_the_candidates_dataset_version(
    models, in_production, newer_dataset
) -> None:
    candidate = models(dataset_version_id=newer_dataset)
    fake = FakeEvaluate(models, {candidate: 0.50, in_production: 0.45})
    report = gate_model(models.ws, candidate, evaluate=fake)
    assert fake.calls == [(candidate, newer_dataset, "test"), (in_production, newer_dataset, "test")]
    assert report.passed and report.complete
    m = get_model(models.ws, candidate)
    assert m.status == "approved"
    assert GateReport.from_dict(m.gate_report or {}) == report
    assert m.gate_report["production_version"] == in_production
    assert m.gate_report["dataset_version_id"] == newer_dataset and m.gate_report["split"] == "test"
    assert m.gate_report["production_metrics"]["map50_95"] == 0.45
    regression = next(c for c in report.checks if c.name == "no_regression")
    assert regression.detail == "mAP50-95 0.500 is 0.050 above production v1 (0.450); allowed drop 0.010"


def test_a_worse_candidate_fails_its_gate(models, in_production) -> None:
    candidate = models()
    report = gate_model(
        models.ws, candidate, evaluate=FakeEvaluate(models, {candidate: 0.40, in_production: 0.45})
    )
    assert not report.passed
    assert get_model(models.ws, candidate).status == "gate_failed"
    assert [c.name for c in report.failed()] == ["no_regression"]


def test_approval_required(models) -> None:
    gates(models.ws, require_approval=True)
    v = models()
    gate_model(models.ws, v, evaluate=FakeEvaluate(models, {v: 0.5}))
    assert get_model(models.ws, v).status == "awaiting_approval"


def test_without_production_only_the_candidate_is_evaluated(models) -> None:
    v = models()
    fake = FakeEvaluate(models, {v: 0.5})
    report = gate_model(models.ws, v, evaluate=fake)
    assert fake.calls == [(v, models.dataset_version_id, "test")]
    assert [c.detail for c in report.checks if c.name == "no_regression"] == ["no production model"]


def test_regating_the_production_model_does_not_compare_it_with_itself(models, in_production) -> None:
    fake = FakeEvaluate(models, {in_production: 0.5})
    gate_model(models.ws, in_production, evaluate=fake)
    assert fake.calls == [(in_production, models.dataset_version_id, "test")]


def test_unmeasured_latency_leaves_the_report_incomplete(models) -> None:
    gates(models.ws, max_latency_ms=30)
    v = models()
    report = gate_model(models.ws, v, evaluate=FakeEvaluate(models, {v: 0.5}))
    assert report.passed and not report.complete
    assert get_model(models.ws, v).gate_report["complete"] is False
    report = gate_model(models.ws, v, evaluate=FakeEvaluate(models, {v: 0.5}), latency_ms=40.0)
    assert get_model(models.ws, v).status == "gate_failed"
    assert report.failed()[0].detail == "p50 latency 40.0 ms is 10.0 ms over the budget 30.0 ms"


def test_floors_use_the_fresh_evaluation(models) -> None:
    gates(models.ws, min_class_ap={"square": 0.6})
    v = models()
    report = gate_model(models.ws, v, evaluate=FakeEvaluate(models, {v: 0.5}))
    assert report.failed()[0].detail == "square AP 0.500 is 0.100 below the floor 0.600"


def test_a_rejected_model_is_not_gated(models) -> None:
    v = models()
    reject(models.ws, v, by="ann", reason="wrong classes")
    with pytest.raises(GateError, match="a person rejected it \\(wrong classes\\)"):
        gate_model(models.ws, v, evaluate=FakeEvaluate(models, {v: 0.5}))


def test_evaluate_must_return_metrics(models) -> None:
    v = models()
    with pytest.raises(GateError, match="gave list, not a metrics dict"):
        gate_model(models.ws, v, evaluate=lambda *a: [])  # type: ignore[arg-type,return-value]


def test_default_evaluate_calls_the_runner(models, monkeypatch) -> None:
    calls = []

    def evaluate_metrics(ws, model_version, dataset_version_id, split):
        calls.append((ws, model_version, dataset_version_id, split))
        return {"map50_95": 0.5}

    runner = types.ModuleType("visionloop.evaluate.runner")
    runner.evaluate_metrics = evaluate_metrics  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "visionloop.evaluate.runner", runner)
    assert gate_module.default_evaluate(models.ws)(3, "abc", "test") == {"map50_95": 0.5}
    assert calls == [(models.ws, 3, "abc", "test")]


def test_the_runner_is_imported_only_when_a_gate_runs() -> None:
    code = "import sys, visionloop.registry.gate, visionloop.cli; print('visionloop.evaluate.runner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
