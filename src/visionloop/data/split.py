"""Deterministic splits: an image's split is a pure function of its content hash.

So an image never changes split as the dataset grows (no test image leaks into
training later), and two workspaces holding the same image agree on its split.
"""

from __future__ import annotations

from visionloop.config import SplitConfig

_SCALE = float(16**12)


def hash_split(oid: str, ratios: SplitConfig) -> str:
    """``train``, ``val`` or ``test`` for the image named by ``oid``."""
    u = int(oid[:12], 16) / _SCALE
    if u < ratios.train:
        return "train"
    if u < ratios.train + ratios.val:
        return "val"
    return "test"


def choose_split(oid: str, source_split: str | None, ratios: SplitConfig, keep_source: bool) -> str:
    """The source's split when asked to keep it (and it has one), else the hash split."""
    if keep_source and source_split in ("train", "val", "test"):
        return str(source_split)
    return hash_split(oid, ratios)
