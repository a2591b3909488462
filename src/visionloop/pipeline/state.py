"""The loop's state as the trigger policy sees it, read from the workspace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select

from visionloop.data.labels import class_counts
from visionloop.pipeline.triggers import LoopState, Trigger
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.workspace import Workspace


def _manifest_pairs(ws: Workspace, dataset_id: str) -> set[tuple[str, str]]:
    import json

    doc = json.loads(ws.blobs.get(dataset_id))
    return {(str(e[0]), str(e[1])) for e in doc["items"]}


def loop_state(ws: Workspace, signals: Sequence[Trigger] = (), alias: str = "production") -> LoopState:
    """Production model, its dataset version, and how many labeled items it has not seen
    (new images, or images whose labels changed since)."""
    current = resolve_alias(ws, alias)
    dataset = get_model(ws, current).dataset_version_id if current is not None else None
    seen = _manifest_pairs(ws, dataset) if dataset else set()
    q = (
        select(schema.items.c.image_oid, schema.labels.c.oid, schema.labels.c.boxes)
        .join(schema.labels, schema.items.c.labels_id == schema.labels.c.id)
        .where(schema.items.c.status == "labeled")
    )
    labeled = new = 0
    per_class: Counter[str] = Counter()
    with ws.engine.connect() as conn:
        for image_oid, labels_oid, boxes in conn.execute(q):
            labeled += 1
            if (image_oid, labels_oid) not in seen:
                new += 1
                per_class.update(class_counts(boxes))
    return LoopState(current, dataset, labeled, new, tuple(signals), dict(per_class))
