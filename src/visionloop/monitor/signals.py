"""Monitoring signals: the findings (drift, degradation) the agent turns into pipeline runs.

A signal's key names its condition, not the moment it was seen: ``drift:v<version>`` and
``degradation:v<version>``. So a model that keeps seeing night traffic window after window asks for
one retrain, not one per window; the model that retrain promotes has its own keys. The key is unique
in ``monitor_signals`` (recording it again is a no-op) and becomes the pipeline run's idempotency
key, so one signal starts at most one run however many agents read it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from visionloop.pipeline.triggers import Trigger
from visionloop.registry.aliases import resolve_alias
from visionloop.store import schema
from visionloop.workspace import Workspace, utcnow


def signal_key(kind: str, model_version: int) -> str:
    return f"{kind}:v{model_version}"


def record_signal(
    ws: Workspace, kind: str, model_version: int, detail: dict[str, Any], window_id: int | None = None
) -> bool:
    """Record a drift or degradation signal; False when its key was already recorded."""
    if kind not in ("drift", "degradation"):
        raise ValueError(f"no monitoring signal kind {kind!r}")
    try:
        with ws.engine.begin() as conn:
            conn.execute(
                insert(schema.monitor_signals).values(
                    kind=kind,
                    key=signal_key(kind, model_version),
                    model_version=model_version,
                    window_id=window_id,
                    detail=detail,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


def pending_signals(ws: Workspace, alias: str = "production") -> list[Trigger]:
    """Signals about the model ``alias`` names now that no pipeline run has taken yet, as triggers.

    Signals about a model that is no longer served are history, not a reason to retrain."""
    version = resolve_alias(ws, alias)
    if version is None:
        return []
    s, r = schema.monitor_signals, schema.pipeline_runs
    taken = select(r.c.idempotency_key)
    q = (
        select(s.c.kind, s.c.key, s.c.detail, s.c.window_id)
        .where(s.c.model_version == version, s.c.key.not_in(taken))
        .order_by(s.c.id)
    )
    with ws.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        Trigger(kind, key, {**(detail or {}), "window_id": window_id, "model_version": version})
        for kind, key, detail, window_id in rows
    ]
