"""The reference a model's production windows are compared with: the same features, computed on the
images of the dataset version the model was trained on, with the model's own predictions.

Built with ONNX Runtime through the serving code (never torch) and cached: one
``monitor_references`` row per dataset version (an npz blob), rebuilt when another model version of
the same dataset asks for it or when the feature extractor changed. Images come from the held-out
splits first (val, test), then train: on images it was trained on a model scores higher than on
anything production will send, which would read as a drop of the scores the moment it is served.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from visionloop.errors import BlobNotFoundError, DataError
from visionloop.monitor.features import (
    EXTRACTOR,
    FeatureTable,
    build_table,
    detections_arrays,
    prediction_stats,
    summarize_image,
)
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.workspace import Workspace, utcnow

log = logging.getLogger("visionloop.monitor")
_SPLIT_ORDER = {"val": 0, "test": 1, "train": 2}


@dataclass(frozen=True)
class Reference:
    dataset_version_id: str
    model_version: int
    score_threshold: float
    table: FeatureTable

    @property
    def classes(self) -> tuple[str, ...]:
        return self.table.class_names


def reference_images(ws: Workspace, dataset_version_id: str, limit: int) -> list[str]:
    """Image oids of a dataset version: val and test first, then train, each in oid order (a hash:
    an unbiased sample of its split), at most ``limit``."""
    manifest = json.loads(ws.blobs.get(dataset_version_id))
    entries = sorted(manifest["items"], key=lambda e: (_SPLIT_ORDER.get(str(e[2]), 3), str(e[0])))
    return [str(e[0]) for e in entries[:limit]]


def build_reference(ws: Workspace, version: int, *, limit: int | None = None) -> Reference:
    """Run model ``version``'s bundle over its dataset version's images and store the reference."""
    from visionloop.serve.follow import bundle_cache, prepare_bundle
    from visionloop.serve.model import decode, detect, load

    mv = get_model(ws, version)
    limit = limit or ws.settings.monitor.reference_images
    loaded = load(prepare_bundle(ws, version, bundle_cache(ws)))
    threshold = float(loaded.bundle.manifest["score_threshold"])
    classes = tuple(loaded.bundle.classes)
    images, predictions = [], []
    for oid in reference_images(ws, mv.dataset_version_id, limit):
        try:
            rgb = decode(ws.blobs.get(oid))
        except (BlobNotFoundError, DataError) as exc:  # fsck's business; the reference skips it
            log.warning("reference of v%s skips image %s: %s", version, oid[:12], exc)
            continue
        found = detect(loaded, rgb, 0.0)
        scores, class_ids = detections_arrays(found)
        images.append(summarize_image(rgb))
        predictions.append(prediction_stats(scores, class_ids, len(classes), threshold))
    if not images:
        raise DataError(
            f"the dataset version of v{version} has no readable image to build a monitoring reference",
            where=mv.dataset_version_id[:12],
            fix="run `visionloop fsck` and check the dataset version",
        )
    table = build_table(images, predictions, classes)
    blob = ws.blobs.put_bytes(
        table.to_npz(model_version=version, score_threshold=threshold, dataset=mv.dataset_version_id)
    )
    ws.blobs.flush()  # the blob is durable before the row naming it
    t = schema.monitor_references
    with ws.engine.begin() as conn:
        conn.execute(delete(t).where(t.c.dataset_version_id == mv.dataset_version_id))
        conn.execute(
            insert(t).values(
                dataset_version_id=mv.dataset_version_id,
                model_version=version,
                features_oid=blob,
                n=len(table),
                created_at=utcnow(),
            )
        )
    log.info("monitoring reference of v%s: %d images of %s", version, len(table), mv.dataset_version_id[:12])
    return Reference(mv.dataset_version_id, version, threshold, table)


def stored_reference(ws: Workspace, version: int) -> Reference | None:
    """The cached reference of model ``version`` when it is current (same model, same extractor)."""
    mv = get_model(ws, version)
    t = schema.monitor_references
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(t.c.model_version, t.c.features_oid).where(t.c.dataset_version_id == mv.dataset_version_id)
        ).first()
    if row is None or int(row[0]) != version or not ws.blobs.has(row[1]):
        return None
    table, meta = FeatureTable.from_npz(ws.blobs.get(row[1]))
    if meta.get("extractor") != EXTRACTOR:
        return None
    return Reference(mv.dataset_version_id, version, float(meta["score_threshold"]), table)


def get_reference(ws: Workspace, version: int) -> Reference:
    """The reference of model ``version``: the cached one, else built now (seconds to minutes)."""
    return stored_reference(ws, version) or build_reference(ws, version)


ReferenceSource = Callable[[int], Reference]
