"""The training configuration: one typed object, saved with every run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from visionloop.config import TrainDefaults


class TrainConfig(BaseModel):
    """Everything that decides a training run (with the dataset version and the code version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "ssdlite"
    epochs: int = Field(30, ge=1)
    imgsz: int = Field(320, ge=32, le=4096)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(0.002, gt=0)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    augment: str = "default"
    seed: int = 0
    patience: int = Field(8, ge=1)
    time_budget_min: float = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    amp: bool = True  # mixed precision, used on CUDA only
    workers: int = Field(0, ge=0)
    weights: str | None = None  # a local file of pretrained weights

    @classmethod
    def from_defaults(cls, defaults: TrainDefaults, **overrides: object) -> TrainConfig:
        """The workspace's ``[train]`` defaults with command-line overrides (None = keep)."""
        base = defaults.model_dump()
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(base)
