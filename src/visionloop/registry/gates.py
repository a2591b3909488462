"""Gates: pure checks of a candidate's metrics (no I/O).

Each :class:`Check` is ``pass``, ``fail`` or ``not_run`` and says why in a sentence
with the numbers. A :class:`GateReport` has *passed* when no check failed and is
*complete* when every check ran; a budget that was not measured is ``not_run``,
never ``pass``.

Checks: ``min_map50_95``, ``min_map50`` (floors), ``min_class_ap[<class>]`` and
``min_class_recall[<class>]`` (per-class floors; a class absent from the metrics
fails), ``no_regression`` (against the production model evaluated on the same
split), ``latency_budget`` and ``size_budget`` (only when a budget is set).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from visionloop.config import GatesConfig

Status = Literal["pass", "fail", "not_run"]
EPS = 1e-9  # floating-point slack: 0.463 must pass a threshold of 0.473 - 0.010
_LABELS = {"map50_95": "mAP50-95", "map50": "mAP50", "ap": "AP", "recall": "recall"}


@dataclass(frozen=True)
class Check:
    """One check: its value, the threshold it is held to, the verdict and a sentence with the numbers."""

    name: str
    value: float | None
    threshold: float | None
    status: Status
    detail: str


@dataclass(frozen=True)
class GateReport:
    """Every check of one gate; ``passed``: none failed; ``complete``: all ran."""

    checks: tuple[Check, ...]
    passed: bool
    complete: bool

    @classmethod
    def of(cls, checks: list[Check]) -> GateReport:
        """The report of ``checks`` (``passed`` and ``complete`` follow from them)."""
        return cls(
            tuple(checks),
            passed=all(c.status != "fail" for c in checks),
            complete=all(c.status != "not_run" for c in checks),
        )

    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [asdict(c) for c in self.checks], "passed": self.passed, "complete": self.complete}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateReport:
        checks = tuple(
            Check(c["name"], c["value"], c["threshold"], c["status"], c["detail"]) for c in data["checks"]
        )
        return cls(checks, bool(data["passed"]), bool(data["complete"]))


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _floor(name: str, label: str, value: float | None, floor: float) -> Check:
    if value is None:
        return Check(
            name, None, floor, "fail", f"the candidate's metrics have no {label}; its floor is {floor:.3f}"
        )
    if value + EPS >= floor:
        return Check(name, value, floor, "pass", f"{label} {value:.3f} meets the floor {floor:.3f}")
    return Check(
        name, value, floor, "fail", f"{label} {value:.3f} is {floor - value:.3f} below the floor {floor:.3f}"
    )


def _class_floor(kind: str, cls: str, per_class: dict[str, Any], floor: float) -> Check:
    name, label = f"min_class_{kind}[{cls}]", f"{cls} {_LABELS[kind]}"
    if cls not in per_class:
        return Check(
            name,
            None,
            floor,
            "fail",
            f"class {cls!r} is missing from the candidate's metrics; its floor is {floor:.3f}",
        )
    return _floor(name, label, _number(per_class[cls].get(kind)), floor)


def _no_regression(
    candidate: float | None, production: dict[str, Any] | None, version: int | None, allowed: float
) -> Check:
    name = "no_regression"
    if production is None:
        return Check(name, candidate, None, "pass", "no production model")
    who = f"production v{version}" if version is not None else "production"
    prod = _number(production.get("map50_95"))
    if prod is None:
        return Check(name, candidate, None, "not_run", f"the metrics of {who} have no mAP50-95")
    threshold = prod - allowed
    if candidate is None:
        return Check(
            name, None, threshold, "fail", f"the candidate's metrics have no mAP50-95; {who} has {prod:.3f}"
        )
    diff = candidate - prod
    if abs(diff) < 0.0005:
        relation = f"equals {who} ({prod:.3f})"
    else:
        relation = f"is {abs(diff):.3f} {'above' if diff > 0 else 'below'} {who} ({prod:.3f})"
    status: Status = "pass" if candidate + EPS >= threshold else "fail"
    return Check(
        name, candidate, threshold, status, f"mAP50-95 {candidate:.3f} {relation}; allowed drop {allowed:.3f}"
    )


def _budget(name: str, label: str, unit: str, value: float | None, budget: float, fmt: str) -> Check:
    if value is None:
        return Check(name, None, budget, "not_run", "not measured yet: needs the ONNX export")
    if value <= budget + EPS:
        return Check(
            name,
            value,
            budget,
            "pass",
            f"{label} {value:{fmt}} {unit} is within the budget {budget:{fmt}} {unit}",
        )
    return Check(
        name,
        value,
        budget,
        "fail",
        f"{label} {value:{fmt}} {unit} is {value - budget:{fmt}} {unit} over the budget {budget:{fmt}} {unit}",
    )


def evaluate_gates(
    candidate: dict[str, Any],
    production: dict[str, Any] | None,
    cfg: GatesConfig,
    *,
    latency_ms: float | None = None,
    size_mb: float | None = None,
    production_version: int | None = None,
) -> GateReport:
    """Check a candidate's metrics against ``cfg``'s floors, the production model's metrics on the
    same split (None: there is no production model) and the latency / size budgets."""
    per_class: dict[str, Any] = candidate.get("per_class") or {}
    map50_95 = _number(candidate.get("map50_95"))
    checks = [
        _floor("min_map50_95", "mAP50-95", map50_95, cfg.min_map50_95),
        _floor("min_map50", "mAP50", _number(candidate.get("map50")), cfg.min_map50),
        *[_class_floor("ap", c, per_class, f) for c, f in cfg.min_class_ap.items()],
        *[_class_floor("recall", c, per_class, f) for c, f in cfg.min_class_recall.items()],
        _no_regression(map50_95, production, production_version, cfg.max_regression),
    ]
    if cfg.max_latency_ms > 0:
        checks.append(_budget("latency_budget", "p50 latency", "ms", latency_ms, cfg.max_latency_ms, ".1f"))
    if cfg.max_size_mb > 0:
        checks.append(_budget("size_budget", "exported size", "MB", size_mb, cfg.max_size_mb, ".1f"))
    return GateReport.of(checks)
