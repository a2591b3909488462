"""``visionloop tune``: hyper-parameter search with Optuna.

Optuna's storage is the workspace database itself, so several machines pointed
at the same PostgreSQL database can work on one study. Every trial is a recorded
run (kind ``trial``, parent = the tune run); trials are pruned on their
intermediate validation mAP; the best trial's model is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visionloop.config import TuneConfig
from visionloop.data.versions import resolve
from visionloop.train.config import TrainConfig
from visionloop.train.engine import Hook
from visionloop.train.run import _finish_run, _start_run, register_run, train
from visionloop.workspace import Workspace


@dataclass(frozen=True)
class TuneResult:
    study: str
    run_id: int
    trials: list[dict[str, Any]]
    best_trial: int
    best_run: int
    best_score: float
    model_version: int | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def suggest(trial: Any, base: TrainConfig, space: TuneConfig) -> TrainConfig:
    """A configuration drawn from the search space."""
    return base.model_copy(
        update={
            "lr": trial.suggest_float("lr", *space.lr, log=True),
            "epochs": trial.suggest_int("epochs", *space.epochs),
            "imgsz": trial.suggest_categorical("imgsz", list(space.imgsz)),
            "model": trial.suggest_categorical("model", list(space.models)),
            "augment": trial.suggest_categorical("augment", list(space.augment)),
        }
    )


def tune(
    ws: Workspace,
    dataset: str,
    trials: int,
    *,
    base: TrainConfig,
    space: TuneConfig | None = None,
    hook: Hook | None = None,
    created_by: str | None = None,
    register: bool = True,
) -> TuneResult:
    """Run ``trials`` trials on ``dataset``; register the best (see the module docstring)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space or ws.settings.tune
    version = resolve(ws, dataset)
    parent = _start_run(ws, version, base, "tune", None)
    name = f"visionloop-tune-{parent}"
    storage = optuna.storages.RDBStorage(ws.settings.database_url(ws.root))
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    outer = hook or (lambda _k, _i: None)

    def objective(trial: optuna.Trial) -> float:
        cfg = suggest(trial, base, space)

        def report(kind: str, info: dict[str, Any]) -> None:
            outer(kind, {**info, "trial": trial.number})
            if kind == "epoch":
                trial.report(info["score"], info["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned()

        result = train(ws, version.id, cfg, hook=report, register=False, kind="trial", parent=parent)
        trial.set_user_attr("run_id", result.run_id)
        return float(result.fit["best_val_map50_95"])

    try:
        study.optimize(objective, n_trials=trials, catch=())
    except BaseException as exc:
        _finish_run(ws, parent, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial
    best_run = int(best.user_attrs["run_id"])
    version_no = register_run(ws, best_run, created_by=created_by) if register else None
    summary = [
        {
            "trial": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "run_id": t.user_attrs.get("run_id"),
        }
        for t in study.trials
    ]
    _finish_run(
        ws,
        parent,
        status="finished",
        metrics={"best_val_map50_95": best.value, "trials": summary, "completed": len(done)},
        artifacts={"study": name},
    )
    return TuneResult(name, parent, summary, best.number, best_run, float(best.value or 0.0), version_no)
