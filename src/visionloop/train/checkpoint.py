"""Checkpoints and weights — never a pickle of code.

- A *checkpoint* (after every epoch) holds the model, optimizer and scheduler
  state dicts, the epoch, the best score and every RNG state, saved with
  ``torch.save`` of plain containers and tensors, and loaded with
  ``weights_only=True``: a file crafted to run code on load is refused.
- *Weights* of a registered model are a safetensors file in the blob store.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from visionloop.errors import DataError, UsageError


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop uses, as tensors and plain values."""
    np_state: Any = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    internal, version, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; anything else is refused, never executed."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(
            "no checkpoint to resume from", where=str(path), fix="start a new run instead of --resume"
        ) from None
    except Exception as exc:  # UnpicklingError and friends: the file is not plain data
        raise DataError(
            f"the checkpoint holds more than tensors and plain values and is refused ({type(exc).__name__})",
            where=str(path),
            fix="only load checkpoints written by visionloop; delete this file",
        ) from None
    return state


def weights_bytes(model: nn.Module) -> bytes:
    """The model's weights as safetensors bytes."""
    return st_save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def load_weights(model: nn.Module, data: bytes, *, strict: bool = True) -> tuple[int, int]:
    """Load safetensors bytes; with ``strict=False`` only names whose shapes match are taken.

    Returns (loaded, total) tensor counts."""
    tensors = st_load(data)
    own = model.state_dict()
    take = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
    if strict and len(take) != len(own):
        raise DataError(
            f"weights do not fit the model ({len(take)} of {len(own)} tensors match)",
            fix="use weights of the same architecture and classes",
        )
    model.load_state_dict(take, strict=False)
    return len(take), len(own)


def read_weights_file(path: Path) -> bytes:
    """A user's pretrained weights (safetensors, or a state dict loaded with ``weights_only=True``)
    as safetensors bytes."""
    if not path.is_file():
        raise UsageError("the weights file does not exist", where=str(path), fix="check the path")
    raw = path.read_bytes()
    try:
        st_load(raw)
        return raw
    except Exception:  # not safetensors: try a plain state dict
        pass
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"the weights file is neither safetensors nor a plain state dict "
            f"({type(exc).__name__}); it is refused",
            where=str(path),
            fix="export the weights as safetensors or a state_dict",
        ) from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(
            "the weights file does not hold a state dict of tensors",
            where=str(path),
            fix="save `model.state_dict()`",
        )
    return st_save({k: v.contiguous() for k, v in obj.items()})
