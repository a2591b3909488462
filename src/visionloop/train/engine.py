"""The training loop — plain functions with explicit arguments, top to bottom.

``fit`` trains epoch by epoch, validates (COCO mAP on the val split), writes a
checkpoint after every epoch (atomically, with optimizer, scheduler and RNG
state), keeps the best weights, and stops early on a plateau or a time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from visionloop.export.contract import detections
from visionloop.train.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    weights_bytes,
    write_atomic,
)
from visionloop.train.config import TrainConfig
from visionloop.train.data import DetectionDataset, Sample, collate
from visionloop.types import Detections


@dataclass
class FitState:
    epoch: int = 0  # epochs completed
    best_score: float = -1.0
    best_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""
    planned_epochs: int = 0  # what fits the time budget (0: the configured epochs)


Hook = Callable[[str, dict[str, Any]], None]  # ("step" | "epoch", info)


def pick_device(wanted: str) -> torch.device:
    if wanted != "auto":
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, steps_per_epoch: int, plan: dict[str, int]
) -> tuple[Any, Any]:
    """The optimizer and a per-step schedule; ``plan["epochs"]`` may shrink while training (a time
    budget), and the cosine then ends on the new last epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:  # linear warm-up, then cosine to 1% of the peak
        total = plan["epochs"] * steps_per_epoch
        if step < warm:
            return 0.001 + (1 - 0.001) * step / warm
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_one_epoch(
    model: nn.Module,
    opt: Any,
    sched: Any,
    loader: DataLoader[Any],
    device: torch.device,
    scaler: torch.amp.GradScaler | None,
    hook: Hook,
) -> float:
    model.train()
    total, n = 0.0, 0
    for images, targets in loader:
        images = [i.to(device, non_blocking=True) for i in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, enabled=scaler is not None):
            loss = sum(model(images, targets).values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        sched.step()
        total, n = total + loss.item(), n + 1
        hook("step", {"loss": loss.item(), "lr": opt.param_groups[0]["lr"]})
    return total / max(1, n)


@torch.no_grad()
def precise_bn(
    model: nn.Module, loader: DataLoader[Any], device: torch.device, max_batches: int = 16
) -> None:
    """Re-estimate BatchNorm statistics as a true average over ``max_batches`` training batches.

    Trained briefly from scratch with small batches, a detector's running averages trail the
    per-batch statistics it learned with, and in eval mode it predicts the same boxes for every
    image. Averaging afresh (PreciseBN) before every validation fixes that."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i, (images, targets) in enumerate(loader):
        if i >= max_batches:
            break
        model([im.to(device) for im in images], [{k: v.to(device) for k, v in t.items()} for t in targets])
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


@torch.inference_mode()
def predict(
    model: nn.Module, images: Sequence[torch.Tensor], device: torch.device, batch: int = 8
) -> list[Detections]:
    """Detections per image (class ids without the background offset)."""
    model.eval()
    out: list[Detections] = []
    for i in range(0, len(images), batch):
        for r in model([im.to(device) for im in images[i : i + batch]]):
            out.append(detections(*(r[k].float().cpu().numpy() for k in ("boxes", "scores", "labels"))))
    return out


def fit(
    model: nn.Module,
    cfg: TrainConfig,
    train: DetectionDataset,
    validate: Callable[[nn.Module], float],
    run_dir: Path,
    hook: Hook,
    resume: bool = False,
) -> FitState:
    """Train ``model``; ``validate(model) -> score`` picks the best epoch (higher is better)."""
    device = pick_device(cfg.device)
    model.to(device)
    loader = DataLoader(
        train,
        batch_size=cfg.batch_size,
        shuffle=True,
        collate_fn=collate,
        num_workers=cfg.workers,
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=len(train) > cfg.batch_size,  # a last batch of 1 breaks BatchNorm on 1x1 maps
    )
    plan = {"epochs": cfg.epochs}
    opt, sched = make_optimizer(model, cfg, len(loader), plan)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and device.type == "cuda" else None
    state, last = FitState(planned_epochs=cfg.epochs), run_dir / "last.pt"
    if resume:
        ckpt = load_checkpoint(last)
        state = FitState(**ckpt["fit"])
        plan["epochs"] = state.planned_epochs or cfg.epochs
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
    while state.epoch < plan["epochs"]:
        epoch = state.epoch
        loader.generator.manual_seed(cfg.seed * 1000 + epoch)  # the shuffle order of each epoch
        t0 = time.monotonic()
        loss = train_one_epoch(model, opt, sched, loader, device, scaler, hook)
        precise_bn(model, loader, device)
        score = validate(model)
        state.epoch = epoch + 1
        state.history.append(
            {"epoch": epoch + 1, "loss": loss, "val_map50_95": score, "seconds": time.monotonic() - t0}
        )
        if cfg.time_budget_min:  # plan as many epochs as the budget holds; the LR anneals to fit
            per_epoch = sum(h["seconds"] for h in state.history) / len(state.history)
            fits = int(cfg.time_budget_min * 60 // per_epoch)
            plan["epochs"] = state.planned_epochs = max(state.epoch, min(cfg.epochs, fits))
        if score > state.best_score:
            state.best_score, state.best_epoch = score, epoch + 1
            write_atomic(run_dir / "best.safetensors", weights_bytes(model))
        save_checkpoint(
            last,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "fit": state.__dict__,
                "rng": rng_state(),
            },
        )
        hook("epoch", {"epoch": epoch + 1, "epochs": plan["epochs"], "loss": loss, "score": score})
        if epoch + 1 - state.best_epoch >= cfg.patience:
            state.stopped = f"early stop: no better val mAP for {cfg.patience} epochs"
            break
    if not state.stopped and plan["epochs"] < cfg.epochs:
        state.stopped = (
            f"{plan['epochs']} of {cfg.epochs} epochs fit the time budget of {cfg.time_budget_min:g} min"
        )
    return state


def samples_to_tensors(samples: Sequence[Sample]) -> list[torch.Tensor]:
    return [torch.from_numpy(s.image).permute(2, 0, 1).float().div(255) for s in samples]
