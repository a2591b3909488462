"""The repository's deployment files, and a real bundle for the server that the images run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle folder of a tiny model: synthetic data, one epoch at 96 px, exported to ONNX."""
    pytest.importorskip("torch", reason="building the test bundle needs the train extra")
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.bundle import write_bundle
    from visionloop.export.run import export_model
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    base = tmp_path_factory.mktemp("deploy-bundle")
    generate(base / "data", images=16, seed=4, size=96)
    with init_workspace(base / "p") as ws:
        import_dataset(ws, base / "data")
        snapshot(ws, "s", keep_splits=True)
        train(ws, "latest", TrainConfig(epochs=1, imgsz=96, batch_size=4, augment="light"))
        export_model(ws, 1, parity_images=2, int8=False, ort=False)
        return write_bundle(ws, 1, base / "bundle").path


def command_options(*path: str) -> set[str]:
    """The options that ``visionloop <path…>`` accepts (read from the CLI itself, not its docs)."""
    import typer.main

    from visionloop.cli import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}


@pytest.fixture(scope="session")
def cli_options() -> Callable[..., set[str]]:
    """``cli_options("serve")``: the set of ``--options`` of that command."""
    return command_options
