"""A workspace whose settings make the whole pipeline run in seconds (tiny images, one epoch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.data.synth import generate
from visionloop.workspace import Workspace, init_workspace, open_workspace

TINY_SETTINGS = {
    "min_new_items = 100": "min_new_items = 10",
    "epochs = 30": "epochs = 1",
    "imgsz = 320": "imgsz = 64",
    "batch_size = 8": "batch_size = 4",
    'augment = "default"': 'augment = "light"',
    "backoff_s = 30.0": "backoff_s = 60.0",
    "interval_s = 10.0": "interval_s = 0.3",
}


def tune(root: Path, **replace: str) -> None:
    """Rewrite settings in the workspace's visionloop.toml (old text → new text)."""
    cfg = root / "visionloop.toml"
    text = cfg.read_text(encoding="utf-8")
    for old, new in {**TINY_SETTINGS, **replace}.items():
        assert old in text or new in text, old
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")


def make_loop_ws(path: Path, **replace: str) -> Workspace:
    """A workspace at ``path`` with the tiny settings (and ``replace``d ones)."""
    first = init_workspace(path)
    root = first.root
    first.close()
    tune(root, **replace)
    return open_workspace(root)


@pytest.fixture(scope="session")
def loop_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("loop")
    generate(base / "day", images=24, seed=7, size=64)
    generate(base / "night", images=12, seed=8, size=64, domain="night")
    return {"day": base / "day", "night": base / "night"}


@pytest.fixture
def loop_ws(tmp_path: Path) -> Iterator[Workspace]:
    """An empty workspace with tiny training settings and a threshold of 10 new items."""
    ws = make_loop_ws(tmp_path / "project")
    yield ws
    ws.close()
