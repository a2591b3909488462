"""Model versions: the registered results of runs (weights, metrics, lineage, gate report).

Versions are numbered 1, 2, 3, … in registration order. Several processes may register
at once (on SQLite and on PostgreSQL): each takes ``max + 1`` inside a transaction and,
when another writer took that number first (the primary key says so), tries again.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.data.versions import resolve
from visionloop.errors import BlobNotFoundError, ModelError, ModelNotFoundError, StoreError, UsageError
from visionloop.store import schema
from visionloop.store.blobs import is_oid
from visionloop.workspace import Workspace, aware, utcnow

STATUSES = ("registered", "gate_failed", "awaiting_approval", "approved", "rejected")
_VERSION_REF = re.compile(r"^v?(\d+)$")
_MAX_TRIES = 25


@dataclass(frozen=True)
class ModelVersion:
    """One ``model_versions`` row."""

    version: int
    run_id: int
    dataset_version_id: str
    architecture: str
    status: str
    weights_oid: str
    classes: list[str]
    imgsz: int
    metrics: dict[str, Any]
    artifacts: dict[str, str]
    lineage: dict[str, Any]
    gate_report: dict[str, Any] | None
    created_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return d


def _model(row: Any) -> ModelVersion:
    return ModelVersion(
        version=row.version,
        run_id=row.run_id,
        dataset_version_id=row.dataset_version_id,
        architecture=row.architecture,
        status=row.status,
        weights_oid=row.weights_oid,
        classes=list(row.classes),
        imgsz=row.imgsz,
        metrics=dict(row.metrics),
        artifacts=dict(row.artifacts),
        lineage=dict(row.lineage),
        gate_report=row.gate_report,
        created_by=row.created_by,
        decided_by=row.decided_by,
        decided_at=aware(row.decided_at) if row.decided_at else None,
        decision_reason=row.decision_reason,
        created_at=aware(row.created_at),
    )


def _max_version(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(schema.model_versions.c.version), 0))).scalar_one())


def register_model(
    ws: Workspace,
    *,
    run_id: int,
    dataset_version_id: str,
    architecture: str,
    weights_oid: str,
    classes: list[str],
    imgsz: int,
    metrics: dict[str, Any],
    artifacts: dict[str, str],
    lineage: dict[str, Any],
    created_by: str | None,
) -> int:
    """Register a run's result as a new model version (status ``registered``); its number.

    The weights and every artifact must already be blobs (the blob lands before the row)."""
    if not classes or imgsz <= 0 or not architecture:
        raise UsageError(
            "a model version needs an architecture, at least one class and a positive input size",
            fix="pass the architecture, classes and imgsz of the trained model",
        )
    dataset = resolve(ws, dataset_version_id)
    with ws.engine.connect() as conn:
        if conn.execute(select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first() is None:
            raise ModelError(
                f"cannot register a model of run {run_id}: there is no such run",
                where=str(ws.root),
                fix="register the result of an existing training run",
            )
    for name, oid in {"weights": weights_oid, **artifacts}.items():
        if not is_oid(oid) or not ws.blobs.has(oid):
            raise BlobNotFoundError(
                f"the {name} blob {oid[:12]!r} is not in the blob store",
                where=ws.blobs.url,
                fix="store the file as a blob before registering the model version",
            )
    values = {
        "run_id": run_id,
        "dataset_version_id": dataset.id,
        "architecture": architecture,
        "status": "registered",
        "weights_oid": weights_oid,
        "classes": list(classes),
        "imgsz": imgsz,
        "metrics": metrics,
        "artifacts": dict(artifacts),
        "lineage": lineage,
        "created_by": created_by,
    }
    for attempt in range(_MAX_TRIES):
        try:
            with ws.engine.begin() as conn:
                version = _max_version(conn) + 1
                conn.execute(
                    insert(schema.model_versions).values(version=version, created_at=utcnow(), **values)
                )
            return version
        except IntegrityError:
            # Another writer committed this number first: take a fresh max after a short,
            # jittered pause so that the contenders spread out.
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise StoreError(
        f"could not number a new model version after {_MAX_TRIES} tries (too many concurrent registrations)",
        where=ws.engine.url.render_as_string(hide_password=True),
        fix="register again",
    )


def _alias_version(ws: Workspace, name: str) -> int | None:
    with ws.engine.connect() as conn:
        v = conn.execute(select(schema.aliases.c.version).where(schema.aliases.c.name == name)).scalar()
    return None if v is None else int(v)


def parse_version(ref: str | int) -> int | None:
    """The version number a reference names (``3``, ``"3"``, ``"v3"``), or None for an alias name."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    m = _VERSION_REF.match(str(ref).strip())
    return int(m.group(1)) if m else None


def get_model(ws: Workspace, ref: str | int) -> ModelVersion:
    """A model version by number (``3``, ``"3"``, ``"v3"``) or by alias (``production``, …)."""
    version = parse_version(ref)
    if version is None:
        version = _alias_version(ws, str(ref))
        if version is None:
            raise ModelNotFoundError(
                f"no alias {str(ref)!r} names a model version",
                where=str(ws.root),
                fix=f"promote a model version with `visionloop model promote V --alias {ref}`, "
                "or give a version number",
            )
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(schema.model_versions).where(schema.model_versions.c.version == version)
        ).first()
    if row is None:
        raise ModelNotFoundError(
            f"no model version {version}", where=str(ws.root), fix="list them with `visionloop model list`"
        )
    return _model(row)


def list_models(ws: Workspace) -> list[ModelVersion]:
    """Every model version, newest first."""
    with ws.engine.connect() as conn:
        rows = conn.execute(select(schema.model_versions).order_by(schema.model_versions.c.version.desc()))
        return [_model(r) for r in rows]


def _update(
    ws: Workspace, version: int, values: dict[str, Any], expected: Collection[str] | None
) -> ModelVersion:
    t = schema.model_versions
    q = update(t).where(t.c.version == version).values(**values)
    if expected is not None:
        q = q.where(t.c.status.in_(list(expected)))
    with ws.engine.begin() as conn:
        changed = conn.execute(q).rowcount
    current = get_model(ws, version)
    if not changed:
        wanted = " or ".join(f"`{s}`" for s in expected or ())
        raise ModelError(
            f"model version {version} is `{current.status}`, not {wanted}: it changed meanwhile",
            where=str(ws.root),
            fix=f"look at it with `visionloop model show {version}` and decide again",
        )
    return current


def set_status(
    ws: Workspace,
    version: int,
    status: str,
    *,
    expected: Collection[str] | None = None,
    decided_by: str | None = None,
    reason: str | None = None,
) -> ModelVersion:
    """Set a version's status, only if it is still one of ``expected`` (when given).

    ``decided_by`` records a person's decision (who, now, why)."""
    if status not in STATUSES:
        raise UsageError(f"unknown model status {status!r}", fix=f"use one of {', '.join(STATUSES)}")
    values: dict[str, Any] = {"status": status}
    if decided_by is not None:
        values |= {"decided_by": decided_by, "decided_at": utcnow(), "decision_reason": reason}
    return _update(ws, version, values, expected)


def set_gate_report(
    ws: Workspace,
    version: int,
    report: dict[str, Any],
    *,
    status: str | None = None,
    expected: Collection[str] | None = None,
) -> ModelVersion:
    """Store a gate report on a version (and its resulting status) in one update."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown model status {status!r}", fix=f"use one of {', '.join(STATUSES)}")
    values: dict[str, Any] = {"gate_report": report}
    if status is not None:
        values["status"] = status
    return _update(ws, version, values, expected)


def add_artifacts(ws: Workspace, version: int, artifacts: dict[str, str]) -> ModelVersion:
    """Name more artifacts of a version (exports); every blob must already be stored."""
    for name, oid in artifacts.items():
        if not ws.blobs.has(oid):
            raise BlobNotFoundError(
                f"artifact {name} names blob {oid[:12]}, which is not stored",
                fix="store the blob before naming it",
            )
    current = get_model(ws, version)
    return _update(ws, version, {"artifacts": {**current.artifacts, **artifacts}}, None)


def blob_location(ws: Workspace, oid: str) -> str:
    """Where a blob lies: a local path, or its URL in a remote store."""
    if ws.blobs.local:
        return str(ws.blobs.path(oid))
    return f"{ws.blobs.url.rstrip('/')}/{oid[:2]}/{oid[2:]}"


def _delta(a: Any, b: Any) -> float | None:
    ok = isinstance(a, int | float) and isinstance(b, int | float)
    return round(float(b) - float(a), 6) if ok else None


def compare_models(ws: Workspace, ref_a: str | int, ref_b: str | int) -> dict[str, Any]:
    """Overall and per-class metrics of two versions side by side, with deltas (B − A)."""
    a, b = get_model(ws, ref_a), get_model(ws, ref_b)
    overall = {
        k: {"a": a.metrics.get(k), "b": b.metrics.get(k), "delta": _delta(a.metrics.get(k), b.metrics.get(k))}
        for k in ("map50_95", "map50", "map75", "ar100")
    }
    pa, pb = a.metrics.get("per_class", {}), b.metrics.get("per_class", {})
    per_class = {}
    for c in dict.fromkeys([*a.classes, *pa, *b.classes, *pb]):
        ca, cb = pa.get(c, {}), pb.get(c, {})
        per_class[c] = {
            k: {"a": ca.get(k), "b": cb.get(k), "delta": _delta(ca.get(k), cb.get(k))}
            for k in ("ap", "ap50", "recall")
        }
    return {
        "a": a.version,
        "b": b.version,
        "same_dataset_version": a.dataset_version_id == b.dataset_version_id,
        "dataset_versions": {"a": a.dataset_version_id, "b": b.dataset_version_id},
        "overall": overall,
        "per_class": per_class,
    }
