from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from visionloop.errors import DataError, UsageError
from visionloop.train.checkpoint import (
    load_checkpoint,
    load_weights,
    read_weights_file,
    rng_state,
    save_checkpoint,
    set_rng_state,
    weights_bytes,
)


class _Exploit:
    def __reduce__(self):  # runs on unpickling: creates a marker file
        return (Path.write_text, (Path(MARKER[0]), "pwned"))


MARKER: list[str] = [""]


def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path: Path) -> None:
    MARKER[0] = str(tmp_path / "marker")
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Exploit()}, evil)
    with pytest.raises(DataError, match="refused"):
        load_checkpoint(evil)
    assert not (tmp_path / "marker").exists(), "the payload ran"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(DataError):
        read_weights_file(raw)
    assert not (tmp_path / "marker").exists()


def test_checkpoint_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 3, "t": torch.arange(4)})
    assert load_checkpoint(path)["epoch"] == 3
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(UsageError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_restores_every_generator(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"rng": rng_state()})
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_weights_are_safetensors_and_load_strictly(tmp_path: Path) -> None:
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    data = weights_bytes(a)
    assert load_weights(b, data) == (2, 2)
    assert torch.equal(a.weight, b.weight)
    with pytest.raises(DataError, match="do not fit"):
        load_weights(torch.nn.Linear(4, 2), data)
    assert load_weights(torch.nn.Linear(4, 2), data, strict=False) == (1, 2)  # the bias fits


def test_user_weights_from_a_state_dict_file(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    other = torch.nn.Linear(3, 2)
    load_weights(other, read_weights_file(path))
    assert torch.equal(other.bias, model.bias)
    with pytest.raises(UsageError, match="does not exist"):
        read_weights_file(tmp_path / "nope.pth")
