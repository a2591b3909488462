"""visionloop — the automated MLOps loop for object detection.

The public Python API mirrors the CLI: each ``visionloop`` verb is a thin call
into one of these functions. Heavy modules load on first use, so importing
``visionloop`` is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "init_workspace": "visionloop.workspace",
    "open_workspace": "visionloop.workspace",
    "Workspace": "visionloop.workspace",
    "Detections": "visionloop.types",
    "import_dataset": "visionloop.data.ingest",
    "snapshot": "visionloop.data.versions",
    "list_versions": "visionloop.data.versions",
    "show_version": "visionloop.data.versions",
    "diff_versions": "visionloop.data.versions",
    "export_version": "visionloop.data.export",
    "fsck": "visionloop.store.fsck",
    "generate": "visionloop.data.synth",
    "train": "visionloop.train.run",
    "tune": "visionloop.train.tune",
    "evaluate_model": "visionloop.evaluate.runner",
    "register_model": "visionloop.registry.versions",
    "get_model": "visionloop.registry.versions",
    "list_models": "visionloop.registry.versions",
    "gate_model": "visionloop.registry.gate",
    "promote": "visionloop.registry.aliases",
    "rollback": "visionloop.registry.aliases",
    "approve": "visionloop.registry.approvals",
    "reject": "visionloop.registry.approvals",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'visionloop' has no attribute {name!r}")
