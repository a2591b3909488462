"""The pipeline's steps: snapshot → train → evaluate → gate → export → bundle → promote.

Each step declares its inputs (a small JSON-able dict; their hash decides whether the
step was already done) and runs by calling the same API as its own command
(``visionloop dataset snapshot``, ``train``, ``evaluate``, ``model gate``, ``export``,
``bundle``, ``model promote``), so every step also runs on its own.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from visionloop.errors import DataError, StopRequested
from visionloop.registry.aliases import promote, resolve_alias
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.workspace import Workspace

Hook = Callable[[str, dict[str, Any]], None]


def quiet(_kind: str, _info: dict[str, Any]) -> None:
    """The hook that reports nothing."""


STEP_FORMAT = 1  # bump when a step's meaning changes, so old records no longer skip it


@dataclass
class Context:
    """What the steps of one pipeline attempt share."""

    ws: Workspace
    run_id: int
    attempt: int
    actor: str
    hook: Hook
    stop: threading.Event
    outputs: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested(
                f"pipeline run {self.run_id} was asked to stop",
                fix="it resumes after its last finished step when an agent or `visionloop run` runs again",
            )


class Skip(Exception):
    """A step that does not apply this time (its reason is recorded)."""


def input_hash(name: str, inputs: dict[str, Any]) -> str:
    doc = json.dumps({"step": name, "format": STEP_FORMAT, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


# ---- snapshot ------------------------------------------------------------------------------


def _snapshot_inputs(ctx: Context) -> dict[str, Any]:
    ws = ctx.ws
    q = (
        select(schema.items.c.image_oid, schema.labels.c.oid, schema.items.c.source_split)
        .join(schema.labels, schema.items.c.labels_id == schema.labels.c.id)
        .where(schema.items.c.status == "labeled")
        .order_by(schema.items.c.image_oid)
    )
    h = hashlib.sha256()
    n = 0
    with ws.engine.connect() as conn:
        for row in conn.execute(q):
            h.update("\t".join(str(x) for x in row).encode() + b"\n")
            n += 1
    if n == 0:
        raise DataError(
            "there are no labeled items to train on", where=str(ws.root), fix="import labeled data first"
        )
    return {"items": h.hexdigest(), "n": n, "classes": ws.classes(), "split": ws.settings.split.model_dump()}


def _snapshot(ctx: Context) -> dict[str, Any]:
    from visionloop.data.versions import snapshot

    version, created = snapshot(ctx.ws, f"pipeline run {ctx.run_id}")
    return {"dataset": version.id, "images": version.n_images, "boxes": version.n_boxes, "created": created}


# ---- train ---------------------------------------------------------------------------------


def _warm_start(ctx: Context, cfg: Any) -> int | None:
    """The production version to start from, when the policy wants it, it fits, and the data is new
    to it (so re-running on the same data asks for the same training, and is skipped)."""
    if not ctx.ws.settings.policies.retrain.warm_start or cfg.weights:
        return None
    current = resolve_alias(ctx.ws, "production")
    if current is None:
        return None
    prod = get_model(ctx.ws, current)
    if prod.dataset_version_id == ctx.outputs["dataset"]:  # nothing new to learn from its data
        return None
    fits = (
        prod.architecture == cfg.model and prod.imgsz == cfg.imgsz and list(prod.classes) == ctx.ws.classes()
    )
    return prod.version if fits else None


def _train_config(ctx: Context) -> Any:
    from visionloop.train.config import TrainConfig

    cfg = TrainConfig.from_defaults(ctx.ws.settings.train, **ctx.train_overrides)
    warm = _warm_start(ctx, cfg)
    if warm is not None:
        cfg = cfg.model_copy(update={"weights": str(ctx.ws.tmp / f"warm-start-v{warm}.safetensors")})
    return cfg, warm


def _train_inputs(ctx: Context) -> dict[str, Any]:
    cfg, warm = _train_config(ctx)
    return {"dataset": ctx.outputs["dataset"], "config": cfg.model_dump(), "warm_start": warm}


def _train(ctx: Context) -> dict[str, Any]:
    from pathlib import Path

    from visionloop.train.run import train

    cfg, warm = _train_config(ctx)
    if warm is not None:
        path = Path(cfg.weights)
        if not path.is_file():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(ctx.ws.blobs.get(get_model(ctx.ws, warm).weights_oid, verify=True))
            tmp.replace(path)

    def hook(kind: str, info: dict[str, Any]) -> None:
        ctx.check_stop()
        ctx.hook(f"train.{kind}", info)

    res = train(ctx.ws, ctx.outputs["dataset"], cfg, hook=hook, created_by=ctx.actor)
    assert res.model_version is not None
    return {
        "model_version": res.model_version,
        "training_run": res.run_id,
        "warm_start": warm,
        "epochs": res.fit["epochs_done"],
        "test_map50_95": res.metrics["map50_95"],
        "test_map50": res.metrics["map50"],
    }


# ---- evaluate, gate ------------------------------------------------------------------------


def _evaluate_inputs(ctx: Context) -> dict[str, Any]:
    return {"model_version": ctx.outputs["model_version"], "dataset": ctx.outputs["dataset"], "split": "test"}


def _evaluate(ctx: Context) -> dict[str, Any]:
    from visionloop.evaluate.runner import evaluate_metrics

    m = evaluate_metrics(ctx.ws, ctx.outputs["model_version"], ctx.outputs["dataset"], "test")
    per_class = {c: v.get("ap50") for c, v in (m.get("per_class") or {}).items()}
    return {"map50_95": m["map50_95"], "map50": m["map50"], "ap50_per_class": per_class}


def _baseline(ctx: Context) -> int | None:
    """The production version the candidate is judged against (after its own promotion: the one
    its stored gate report names, so re-running a finished pipeline changes nothing)."""
    mv = get_model(ctx.ws, ctx.outputs["model_version"])
    current = resolve_alias(ctx.ws, "production")
    if current == mv.version:
        return (mv.gate_report or {}).get("production_version")
    return current


def _gate_inputs(ctx: Context) -> dict[str, Any]:
    return {
        "model_version": ctx.outputs["model_version"],
        "baseline": _baseline(ctx),
        "gates": ctx.ws.settings.gates.model_dump(),
    }


def _gate(ctx: Context) -> dict[str, Any]:
    from visionloop.registry.gate import gate_model

    report = gate_model(ctx.ws, ctx.outputs["model_version"])
    status = get_model(ctx.ws, ctx.outputs["model_version"]).status
    return {
        "passed": report.passed,
        "status": status,
        "baseline": _baseline(ctx),
        "failed": [c.detail for c in report.failed()],
    }


def _require_gate(ctx: Context) -> None:
    if not ctx.outputs.get("passed"):
        raise Skip("the model failed its gates: " + "; ".join(ctx.outputs.get("failed", [])))


# ---- export, bundle, promote ---------------------------------------------------------------


def _export_inputs(ctx: Context) -> dict[str, Any]:
    _require_gate(ctx)
    return {"model_version": ctx.outputs["model_version"]}


def _export(ctx: Context) -> dict[str, Any]:
    from visionloop.export.run import export_model, export_report

    mv = ctx.outputs["model_version"]
    report = export_report(ctx.ws, mv) or export_model(ctx.ws, mv)
    int8 = report.get("int8") or {}
    return {
        "parity": bool(report["parity"]["passed"]),
        "size_mb": report["size_mb"],
        "latency_p50_ms": report["latency_ms"]["p50"],
        "int8_kept": bool(int8.get("kept")),
    }


def _bundle_inputs(ctx: Context) -> dict[str, Any]:
    _require_gate(ctx)
    return {"model_version": ctx.outputs["model_version"]}


def _bundle(ctx: Context) -> dict[str, Any]:
    from visionloop.export.bundle import publish_bundle

    manifest = publish_bundle(ctx.ws, ctx.outputs["model_version"])
    return {"bundle_files": sorted(manifest["files"])}


def _promote_inputs(ctx: Context) -> dict[str, Any]:
    _require_gate(ctx)
    return {"model_version": ctx.outputs["model_version"]}


def _promote(ctx: Context) -> dict[str, Any]:
    from visionloop.registry.gate import gate_model

    ws, mv = ctx.ws, ctx.outputs["model_version"]
    model = get_model(ws, mv)
    if not (model.gate_report or {}).get("complete", True):  # budgets waited for the export: check them now
        report = gate_model(ws, mv)
        if not report.passed:
            raise Skip("the model failed its gates: " + "; ".join(c.detail for c in report.failed()))
        model = get_model(ws, mv)
    if model.status == "awaiting_approval":
        raise Skip(f"v{mv} passed its gates and awaits approval: `visionloop model approve {mv}`")
    before = resolve_alias(ws, "production")
    promote(ws, mv, actor=ctx.actor, reason=f"pipeline run {ctx.run_id}: passed its gates")
    return {"promoted": True, "from_version": before, "to_version": mv}


@dataclass(frozen=True)
class Step:
    name: str
    inputs: Callable[[Context], dict[str, Any]]
    run: Callable[[Context], dict[str, Any]]


STEPS: tuple[Step, ...] = (
    Step("snapshot", _snapshot_inputs, _snapshot),
    Step("train", _train_inputs, _train),
    Step("evaluate", _evaluate_inputs, _evaluate),
    Step("gate", _gate_inputs, _gate),
    Step("export", _export_inputs, _export),
    Step("bundle", _bundle_inputs, _bundle),
    Step("promote", _promote_inputs, _promote),
)
STEP_NAMES = tuple(s.name for s in STEPS)
