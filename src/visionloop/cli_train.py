"""``visionloop train``, ``tune`` and ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli import JsonOpt, _table, _ws, app, emit, out
from visionloop.progress import err


@contextmanager
def training_progress(enabled: bool) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """A Rich progress bar fed by the training hook: epoch, loss, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not enabled:
        yield lambda _k, _i: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("loading data", total=None, info="")
        state = {"epoch": 1, "steps": 0, "epochs": 0}

        def hook(kind: str, info: dict[str, Any]) -> None:
            if kind == "step":
                state["steps"] += 1
                bar.update(
                    task,
                    advance=1,
                    description=f"epoch {state['epoch']}",
                    info=f"loss {info['loss']:.3f}  lr {info['lr']:.4f}",
                )
            elif kind == "epoch":
                if state["epoch"] == 1:
                    bar.update(task, total=state["steps"] * info["epochs"])
                state["epoch"] = info["epoch"] + 1
                prefix = f"trial {info['trial']} " if "trial" in info else ""
                err.print(
                    f"{prefix}epoch {info['epoch']}/{info['epochs']}: loss {info['loss']:.3f}, "
                    f"val mAP50-95 {info['score']:.3f}",
                    highlight=False,
                )
            elif kind == "weights":
                err.print(f"pretrained weights: {info['loaded']} of {info['total']} tensors loaded")

        yield hook


def _metrics_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    rows = [
        ["all", f"{metrics['map50_95']:.3f}", f"{metrics['map50']:.3f}", f"{metrics.get('ar100', 0):.3f}", ""]
    ]
    for name, m in metrics.get("per_class", {}).items():
        if m.get("ap") is None:
            rows.append([name, "-", "-", "-", m.get("n_gt", 0)])
        else:
            rows.append([name, f"{m['ap']:.3f}", f"{m['ap50']:.3f}", f"{m['recall']:.3f}", m["n_gt"]])
    return rows


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    out.print(_table(title, ["class", "mAP50-95", "mAP50", "recall", "objects"], _metrics_rows(metrics)))


@app.command("train")
def train_cmd(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset version (id, prefix or latest).")
    ] = "latest",
    model: Annotated[str | None, typer.Option(help="Architecture (see `visionloop models`).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Input size in pixels.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    augment: Annotated[
        str | None, typer.Option(help="Augmentation preset: none, light, default, heavy.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed (a CPU run is repeatable).")] = 0,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="Stop after N minutes.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    weights: Annotated[
        Path | None, typer.Option(help="Local pretrained weights (safetensors or state dict).")
    ] = None,
    resume: Annotated[int | None, typer.Option(help="Continue run N after an interruption.")] = None,
    by: Annotated[str | None, typer.Option(help="Who trains (recorded; approvals check it).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a detector on a dataset version; the best epoch is evaluated and registered."""
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train

    ws = _ws()
    cfg = None
    if resume is None:
        cfg = TrainConfig.from_defaults(
            ws.settings.train,
            model=model,
            epochs=epochs,
            imgsz=imgsz,
            batch_size=batch_size,
            lr=lr,
            augment=augment,
            seed=seed,
            time_budget_min=time_budget,
            device=device,
            weights=str(weights) if weights else None,
        )
    with training_progress(not as_json) as hook:
        res = train(ws, dataset, cfg, resume=resume, hook=hook, created_by=by)

    def render() -> None:
        print_metrics(
            f"Run {res.run_id} → model version v{res.model_version} ({res.fit['eval_split']} split)",
            res.metrics,
        )
        out.print(
            f"best epoch {res.fit['best_epoch']} of {res.fit['epochs_done']}"
            f"{'; ' + res.fit['stopped'] if res.fit['stopped'] else ''}. "
            f"Next: visionloop model gate {res.model_version}"
        )

    emit(res.to_dict(), as_json, render)


@app.command("tune")
def tune_cmd(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset version.")] = "latest",
    trials: Annotated[int, typer.Option(help="Number of trials.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every trial.")] = 0,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="Minutes per trial.")] = None,
    by: Annotated[str | None, typer.Option(help="Who tunes (recorded).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search hyper-parameters with Optuna (space: `[tune]` in visionloop.toml); register the best."""
    from visionloop.train.config import TrainConfig
    from visionloop.train.tune import tune

    ws = _ws()
    base = TrainConfig.from_defaults(ws.settings.train, seed=seed, time_budget_min=time_budget)
    with training_progress(not as_json) as hook:
        res = tune(ws, dataset, trials, base=base, hook=hook, created_by=by)

    def render() -> None:
        rows = [
            [
                t["trial"],
                t["state"],
                "-" if t["value"] is None else f"{t['value']:.3f}",
                ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items()
                ),
            ]
            for t in res.trials
        ]
        out.print(_table(f"Study {res.study}", ["trial", "state", "val mAP50-95", "params"], rows))
        out.print(f"best: trial {res.best_trial} (run {res.best_run}) → model version v{res.model_version}")

    emit(res.to_dict(), as_json, render)


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[str, typer.Argument(help="Model version number or alias.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset version.")] = "latest",
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """COCO metrics of a model version on a dataset split, with PR curves and a confusion matrix."""
    from visionloop.evaluate.runner import evaluate_model

    ws = _ws()
    res = evaluate_model(ws, model, dataset, split, device)

    def render() -> None:
        print_metrics(
            f"Model v{res['model_version']} on {res['dataset_version'][:12]} / {split}", res["metrics"]
        )
        for name, oid in res["artifacts"].items():
            out.print(f"  {name}: {ws.blobs.path(oid) if ws.blobs.local else oid}", highlight=False)

    emit(res, as_json, render)


@app.command("models")
def models_cmd(as_json: JsonOpt = False) -> None:
    """The architectures `visionloop train --model` accepts."""
    from visionloop.train.zoo import ZOO

    rows = [[a.name, "mobile" if a.mobile else "server/GPU", a.summary] for a in ZOO.values()]
    emit(
        [{"name": r[0], "kind": r[1], "summary": r[2]} for r in rows],
        as_json,
        lambda: out.print(_table("Architectures", ["name", "kind", "summary"], rows)),
    )


@app.command("export")
def export_cmd(
    model: Annotated[str, typer.Argument(help="Model version number or alias.")],
    parity_images: Annotated[int, typer.Option(help="Validation images for the parity check.")] = 20,
    int8: Annotated[
        bool, typer.Option("--int8/--no-int8", help="Also quantize to int8 (kept within the bound).")
    ] = True,
    int8_max_drop: Annotated[
        float, typer.Option(help="Largest mAP50-95 drop an int8 model may have.")
    ] = 0.01,
    ort: Annotated[
        bool, typer.Option("--ort/--no-ort", help="Also write the ORT format (ONNX Runtime Mobile).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Export a model version to ONNX; check parity with PyTorch; measure CPU latency and size (the gates use them)."""
    from visionloop.export.run import export_model

    ws = _ws()
    res = export_model(
        ws, model, parity_images=parity_images, int8=int8, int8_max_drop=int8_max_drop, ort=ort
    )

    def render() -> None:
        p = res["parity"]
        out.print(
            f"v{res['model_version']} → ONNX opset {res['opset']}, input {res['input']}, {res['size_mb']} MB; "
            f"CPU latency p50 {res['latency_ms']['p50']} ms, p95 {res['latency_ms']['p95']} ms; parity "
            f"{'passed' if p['passed'] else 'FAILED'}: {p['matched']}/{p['boxes']} boxes reproduced on "
            f"{p['images']} images, max score difference {p['max_score_diff']}, mAP50-95 torch "
            f"{p['map50_95_torch']} / onnx {p['map50_95_onnx']}",
            highlight=False,
        )
        if "int8" in res:
            q = res["int8"]
            out.print(
                f"int8: {'kept' if q['kept'] else 'refused'} (mAP drop {q['map_drop']}, bound {q['max_drop']}; "
                f"{q['size_mb']} MB, p50 {q['latency_ms']['p50']} ms)",
                highlight=False,
            )
        if "ort" in res:
            out.print(f"ORT format: {res['ort']['size_mb']} MB (ONNX Runtime Mobile)", highlight=False)

    emit(res, as_json, render)


@app.command("bundle")
def bundle_cmd(
    model: Annotated[str, typer.Argument(help="Model version number or alias (exported).")],
    out_dir: Annotated[
        Path | None, typer.Argument(help="New or empty folder (none: publish in the workspace only).")
    ] = None,
    score_threshold: Annotated[float, typer.Option(help="Score threshold the bundle recommends.")] = 0.25,
    as_json: JsonOpt = False,
) -> None:
    """Publish the deployable bundle in the workspace (exported models, bundle.json with contract, metrics,
    lineage, sha256s, model card) and write it into OUT_DIR."""
    from visionloop.export.bundle import publish_bundle, write_bundle

    ws = _ws()
    if out_dir is None:
        m = publish_bundle(ws, model, score_threshold=score_threshold)
        files = {name: meta["bytes"] for name, meta in m["files"].items()}
        emit(
            {"path": None, "model_version": m["model_version"], "files": files},
            as_json,
            lambda: out.print(
                f"Bundle of v{m['model_version']} published in the workspace: {', '.join(files)}",
                highlight=False,
            ),
        )
        return
    b = write_bundle(ws, model, out_dir, score_threshold=score_threshold)
    files = {name: meta["bytes"] for name, meta in b.manifest["files"].items()}
    emit(
        {"path": str(b.path), "model_version": b.version, "files": files},
        as_json,
        lambda: out.print(
            f"Bundle of v{b.version} in {b.path}: {', '.join(files)} (verified)", highlight=False
        ),
    )
