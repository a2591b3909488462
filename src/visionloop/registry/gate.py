"""The gate's shell: evaluate, check (pure, in ``gates``), store the verdict.

The candidate is evaluated on the test split of its own dataset version, and the
current ``production`` model on that same split — the newer data judges both, so
the comparison is fair. The report lands on the model version's row with the
status it earns: ``approved``, ``awaiting_approval`` (when ``gates.require_approval``)
or ``gate_failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from visionloop.errors import GateError
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.gates import GateReport, evaluate_gates
from visionloop.registry.versions import get_model, set_gate_report
from visionloop.workspace import Workspace, utcnow

#: ``evaluate(model_version, dataset_version_id, split) -> metrics dict``
Evaluate = Callable[[int, str, str], dict[str, Any]]
GATEABLE = ("registered", "gate_failed", "awaiting_approval", "approved")
SPLIT = "test"


def default_evaluate(ws: Workspace) -> Evaluate:
    """``visionloop.evaluate.runner.evaluate_metrics``, imported only when a gate runs (it needs torch)."""
    try:
        fn: Any = import_module("visionloop.evaluate.runner").evaluate_metrics
    except ImportError as exc:
        raise GateError(
            f"cannot evaluate model versions here ({exc})",
            fix="install the train extra: pip install -e '.[train]'",
        ) from None
    return lambda v, d, s: dict(fn(ws, v, d, s))


def _evaluated(evaluate: Evaluate, version: int, dataset_version_id: str) -> dict[str, Any]:
    metrics = evaluate(version, dataset_version_id, SPLIT)
    if not isinstance(metrics, dict):
        raise GateError(
            f"evaluating model version {version} gave {type(metrics).__name__}, not a metrics dict",
            where=f"dataset version {dataset_version_id[:12]}, split {SPLIT}",
            fix="fix the evaluate function",
        )
    return metrics


def gate_model(
    ws: Workspace,
    version: int,
    *,
    evaluate: Evaluate | None = None,
    latency_ms: float | None = None,
    size_mb: float | None = None,
) -> GateReport:
    """Evaluate and check model ``version``; store the report and the status it earns."""
    model = get_model(ws, version)
    if model.status not in GATEABLE:
        raise GateError(
            f"model version {model.version} is `{model.status}`: a person rejected it "
            f"({model.decision_reason or 'no reason given'}), so it is not gated again",
            where=str(ws.root),
            fix="train and register a new model version",
        )
    run = evaluate or default_evaluate(ws)
    cfg = ws.settings.gates
    if latency_ms is None and size_mb is None and "export.json" in model.artifacts:
        from visionloop.export.run import measured_budgets

        latency_ms, size_mb = measured_budgets(ws, model.version)
    candidate = _evaluated(run, model.version, model.dataset_version_id)
    current = resolve_alias(ws, "production")
    production_version = current if current is not None and current != model.version else None
    production = (
        None if production_version is None else _evaluated(run, production_version, model.dataset_version_id)
    )
    report = evaluate_gates(
        candidate,
        production,
        cfg,
        latency_ms=latency_ms,
        size_mb=size_mb,
        production_version=production_version,
    )
    if not report.passed:
        status = "gate_failed"
    else:
        status = "awaiting_approval" if cfg.require_approval else "approved"
    stored = {
        **report.to_dict(),
        "status": status,
        "dataset_version_id": model.dataset_version_id,
        "split": SPLIT,
        "candidate_metrics": candidate,
        "production_version": production_version,
        "production_metrics": production,
        "latency_ms": latency_ms,
        "size_mb": size_mb,
        "gated_at": utcnow().isoformat(),
    }
    set_gate_report(ws, model.version, stored, status=status, expected=GATEABLE)
    return report
