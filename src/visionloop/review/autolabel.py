"""``visionloop autolabel``: the model an alias names proposes boxes on every unlabeled image.

Each proposal becomes a labels revision with origin ``model:<version>`` (no author), the item
points to it with status ``proposed`` (never counted as labeled data) and a ``review_tasks``
row waits for a person, its priority set by the routing policy (:mod:`visionloop.review.routing`).
The model runs twice per image, on the image and on its horizontal mirror, so that the
policy can measure how stable the proposal is.

With an auto-accept bound, an image whose every proposed box scores at least the bound and is
found again on the mirror skips the queue: its task is ``auto_accepted`` and the item becomes
``labeled`` with a second revision of origin ``auto:model:<version>`` (never ``review``).

Runs on ONNX Runtime through the serving code; never imports torch. Idempotent: an item
takes part only while it is ``unlabeled`` and has no task from this model version, and the
status change is a compare-and-set, so two runs at once never propose one item twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy import and_, exists, insert, select, update

from visionloop.data import labels as labelset
from visionloop.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    DataError,
    ModelError,
    ModelNotFoundError,
    UsageError,
)
from visionloop.registry.aliases import resolve_alias
from visionloop.review.routing import Proposal, Routing, RoutingPolicy, route, unflip
from visionloop.serve.follow import bundle_cache, prepare_bundle
from visionloop.serve.model import Loaded, decode, detect, load
from visionloop.store import schema
from visionloop.workspace import Workspace, utcnow

#: A model on one image: ``detector(rgb, min_score)`` → ``[{"class", "box": [x1, y1, x2, y2], "score"}]``
#: in image pixels (what :func:`visionloop.serve.model.detect` returns).
Detector = Callable[[Image.Image, float], list[dict[str, Any]]]
#: ``progress(total=N)`` once, then ``progress(1)`` per image (what ``progress_bar`` yields).
Progress = Callable[..., None]


@dataclass
class AutolabelResult:
    """What one auto-annotation pass did; ``to_dict`` is its JSON report."""

    alias: str
    model_version: int
    min_score: float
    candidates: int = 0
    proposed: int = 0
    boxes: int = 0
    tasks_created: int = 0
    auto_accepted: int = 0
    raced: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report: counts, and each image that could not be proposed, with why."""
        return {
            "alias": self.alias,
            "model_version": self.model_version,
            "min_score": self.min_score,
            "candidates": self.candidates,
            "images_proposed": self.proposed,
            "boxes": self.boxes,
            "tasks_created": self.tasks_created,
            "auto_accepted": self.auto_accepted,
            "raced": self.raced,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class _Candidate:
    oid: str
    name: str
    labels_id: int | None
    width: int
    height: int


def class_frequency(ws: Workspace) -> Counter[str]:
    """Boxes per class over the current labels of every ``labeled`` item."""
    q = (
        select(schema.labels.c.boxes)
        .select_from(schema.items.join(schema.labels, schema.items.c.labels_id == schema.labels.c.id))
        .where(schema.items.c.status == "labeled")
    )
    counts: Counter[str] = Counter()
    with ws.engine.connect() as conn:
        for (text,) in conn.execute(q):
            counts.update(labelset.class_counts(text))
    return counts


def _candidates(ws: Workspace, version: int, limit: int | None) -> list[_Candidate]:
    items, tasks = schema.items, schema.review_tasks
    has_task = exists().where(and_(tasks.c.image_oid == items.c.image_oid, tasks.c.model_version == version))
    q = (
        select(
            items.c.image_oid, items.c.name, items.c.labels_id, schema.images.c.width, schema.images.c.height
        )
        .select_from(items.join(schema.images, schema.images.c.oid == items.c.image_oid))
        .where(items.c.status == "unlabeled", ~has_task)
        .order_by(items.c.created_at, items.c.image_oid)
    )
    if limit is not None:
        q = q.limit(limit)
    with ws.engine.connect() as conn:
        return [_Candidate(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in conn.execute(q)]


def _proposals(
    detector: Detector, rgb: Image.Image, min_score: float, max_boxes: int, size: tuple[int, int]
) -> list[Proposal]:
    """The model's boxes on ``rgb`` at or above ``min_score``, clipped to the image, best first."""
    w, h = size
    out: list[Proposal] = []
    for d in sorted(detector(rgb, min_score), key=lambda d: -float(d["score"])):
        x1, y1, x2, y2 = (float(v) for v in d["box"])
        x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
        y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
        if x2 - x1 >= 1.0 and y2 - y1 >= 1.0:  # a box under a pixel is not worth a look
            out.append(Proposal(str(d["class"]), (x1, y1, x2, y2), float(d["score"])))
        if len(out) == max_boxes:
            break
    return out


def _record(
    ws: Workspace, c: _Candidate, version: int, props: list[Proposal], routing: Routing, extra: dict[str, Any]
) -> str | None:
    """Store the proposal, the task and (auto-accept) the accepted revision in one transaction.

    Returns the task status, or None when the item stopped being ``unlabeled`` meanwhile."""
    now = utcnow()
    boxes = [(*p.box, p.class_name, False) for p in props]
    auto = routing.auto_accept
    status = "auto_accepted" if auto else "pending"
    items, labels = schema.items, schema.labels
    with ws.engine.begin() as conn:
        # Compare-and-set first: it takes the write lock, and a second run loses here.
        claimed = conn.execute(
            update(items)
            .where(items.c.image_oid == c.oid, items.c.status == "unlabeled")
            .values(status="proposed", updated_at=now)
        )
        if claimed.rowcount != 1:
            return None
        row = labelset.row(c.oid, boxes, now, parent_id=c.labels_id, origin=f"model:{version}")
        proposal_id = int(conn.execute(insert(labels).returning(labels.c.id), [row]).scalar_one())
        decision_id = None
        if auto:
            accepted = labelset.row(c.oid, boxes, now, parent_id=proposal_id, origin=f"auto:model:{version}")
            decision_id = int(conn.execute(insert(labels).returning(labels.c.id), [accepted]).scalar_one())
        conn.execute(
            update(items)
            .where(items.c.image_oid == c.oid)
            .values(labels_id=decision_id or proposal_id, status="labeled" if auto else "proposed")
        )
        conn.execute(
            insert(schema.review_tasks).values(
                image_oid=c.oid,
                proposal_id=proposal_id,
                model_version=version,
                priority=routing.priority,
                reasons={**routing.to_dict(), **extra, "proposal": [p.to_dict() for p in props]},
                status=status,
                decision_id=decision_id,
                decided_by=f"auto:model:{version}" if auto else None,
                decided_at=now if auto else None,
                created_at=now,
            )
        )
    return status


def _version_for(ws: Workspace, alias: str) -> int:
    version = resolve_alias(ws, alias)
    if version is None:
        raise ModelNotFoundError(
            f"alias {alias!r} names no model version, so there is no model to propose labels",
            where=str(ws.root),
            fix=f"promote one with `visionloop model promote V --alias {alias}`, or pass --alias NAME",
        )
    return version


def _model(ws: Workspace, version: int) -> Loaded:
    loaded = load(prepare_bundle(ws, version, bundle_cache(ws)))
    unknown = [c for c in loaded.bundle.classes if c not in ws.classes()]
    if unknown:
        raise ModelError(
            f"model version {version} predicts classes the workspace does not know: {', '.join(unknown)}",
            where=str(ws.root),
            fix="add the classes to the workspace, or propose with a model trained on this workspace",
        )
    return loaded


def propose(
    ws: Workspace,
    version: int,
    detector: Detector,
    *,
    alias: str = "",
    min_score: float = 0.25,
    limit: int | None = None,
    progress: Progress | None = None,
    policy: RoutingPolicy | None = None,
    max_boxes: int = 100,
) -> AutolabelResult:
    """Propose labels with ``detector`` as model version ``version`` on every unlabeled image that
    has no task from that version (:func:`autolabel` does this with the alias's bundle)."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit} is not a positive number of images", fix="pass --limit 1 or more")
    if not 0.0 <= min_score <= 1.0:
        raise UsageError(f"the minimum score {min_score} is outside [0, 1]", fix="pass a score such as 0.25")
    policy = policy or RoutingPolicy()
    result = AutolabelResult(alias, version, min_score)
    todo = _candidates(ws, version, limit)
    result.candidates = len(todo)
    frequency = class_frequency(ws)
    if progress:
        progress(total=len(todo))
    extra = {"band": list(policy.band), "min_score": min_score}
    for c in todo:
        try:
            rgb = decode(ws.blobs.get(c.oid))
        except (DataError, BlobNotFoundError, BlobCorruptError) as exc:
            result.failed.append({"image_oid": c.oid, "name": c.name, "error": exc.message})
        else:
            size = (c.width, c.height)
            props = _proposals(detector, rgb, min_score, max_boxes, size)
            mirrored = _proposals(
                detector, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT), min_score, max_boxes, size
            )
            routing = route(props, unflip(mirrored, c.width), frequency, policy)
            status = _record(ws, c, version, props, routing, extra)
            if status is None:
                result.raced += 1
            else:
                result.proposed += 1
                result.boxes += len(props)
                if status == "auto_accepted":
                    result.auto_accepted += 1
                else:
                    result.tasks_created += 1
        if progress:
            progress(1)
    return result


def autolabel(
    ws: Workspace,
    *,
    alias: str = "production",
    limit: int | None = None,
    progress: Progress | None = None,
    auto_accept: float | None = None,
    min_score: float | None = None,
    band: tuple[float, float] = (0.2, 0.6),
    max_boxes: int = 100,
) -> AutolabelResult:
    """Propose labels on every unlabeled image with the model ``alias`` names (see the module docstring).

    ``min_score``: the lowest score proposed (default: the bundle's score threshold); ``band``:
    the ambiguous score band of the routing policy; ``auto_accept``: the auto-accept bound (off
    when None); ``limit``: at most this many images in this pass."""
    policy = RoutingPolicy(band=band, auto_accept=auto_accept)
    version = _version_for(ws, alias)
    if not _candidates(ws, version, 1):  # nothing new: do not open (and warm) a model session for it
        return AutolabelResult(alias, version, 0.25 if min_score is None else min_score)
    loaded = _model(ws, version)
    threshold = float(loaded.bundle.manifest.get("score_threshold", 0.25)) if min_score is None else min_score
    return propose(
        ws,
        version,
        lambda rgb, score: detect(loaded, rgb, score),
        alias=alias,
        min_score=threshold,
        limit=limit,
        progress=progress,
        policy=policy,
        max_boxes=max_boxes,
    )
