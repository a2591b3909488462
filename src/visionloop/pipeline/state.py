"""The loop's state as the trigger policy sees it, read from the workspace."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select

from visionloop.data.labels import class_counts
from visionloop.pipeline.triggers import LoopState, Trigger
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.workspace import Workspace

_SEEN: dict[str, frozenset[tuple[str, str]]] = {}  # dataset version id → its (image, labels) pairs


def _manifest_pairs(ws: Workspace, dataset_id: str) -> frozenset[tuple[str, str]]:
    """The (image oid, labels oid) pairs of a dataset version. A version id is the sha256 of its
    manifest, so the answer never changes: the agent reads and parses it once, not every round."""
    if dataset_id not in _SEEN:
        doc = json.loads(ws.blobs.get(dataset_id))
        _SEEN.clear()  # only the production model's version is asked for; keep one
        _SEEN[dataset_id] = frozenset((str(e[0]), str(e[1])) for e in doc["items"])
    return _SEEN[dataset_id]


def loop_state(ws: Workspace, signals: Sequence[Trigger] = (), alias: str = "production") -> LoopState:
    """Production model, its dataset version, and how many labeled items it has not seen
    (new images, or images whose labels changed since), with their boxes per class."""
    current = resolve_alias(ws, alias)
    dataset = get_model(ws, current).dataset_version_id if current is not None else None
    seen = _manifest_pairs(ws, dataset) if dataset else frozenset()
    labels = schema.labels
    q = (
        select(schema.items.c.image_oid, labels.c.oid, labels.c.id)
        .join(labels, schema.items.c.labels_id == labels.c.id)
        .where(schema.items.c.status == "labeled")
    )
    labeled = 0
    new_ids: list[int] = []
    per_class: Counter[str] = Counter()
    with ws.engine.connect() as conn:
        for image_oid, labels_oid, labels_id in conn.execute(q):
            labeled += 1
            if (image_oid, labels_oid) not in seen:
                new_ids.append(labels_id)
        for start in range(0, len(new_ids), 1000):  # boxes only of the new items
            chunk = new_ids[start : start + 1000]
            for (boxes,) in conn.execute(select(labels.c.boxes).where(labels.c.id.in_(chunk))):
                per_class.update(class_counts(boxes))
    return LoopState(current, dataset, labeled, len(new_ids), tuple(signals), dict(per_class))
