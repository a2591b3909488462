"""The workspace's rollout: what the servers following it do with the ``candidate`` alias.

Every change is one appended ``rollout_events`` row (mode, percent, the version ``candidate``
named, who, why); rows are never updated, and the newest one is the rollout in force, so the
table is also the history of what the candidate was shown to and when. Servers re-read it at
every poll. ``candidate`` is an ordinary alias: starting a canary or a shadow moves it (with its
own history), and :func:`promote_candidate` moves ``production`` to it and ends the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from visionloop.errors import ModelNotFoundError, UsageError
from visionloop.registry.aliases import AliasEvent, promote, resolve_alias
from visionloop.registry.versions import get_model
from visionloop.serve.rollout import Mode, Rollout
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

CANDIDATE = "candidate"
PRODUCTION = "production"


@dataclass(frozen=True)
class RolloutRecord:
    """One ``rollout_events`` row; ``id`` None: no rollout was ever recorded (so it is off)."""

    id: int | None
    mode: Mode
    percent: float
    candidate_version: int | None
    actor: str | None
    reason: str | None
    created_at: datetime | None

    @property
    def rollout(self) -> Rollout:
        return Rollout(self.mode, self.percent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "percent": self.percent,
            "candidate_version": self.candidate_version,
            "actor": self.actor,
            "reason": self.reason,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }


NEVER = RolloutRecord(None, "off", 0.0, None, None, None, None)


def _record(row: Any) -> RolloutRecord:
    rollout = Rollout(row.mode, float(row.percent))  # a row written by hand is checked too
    return RolloutRecord(
        int(row.id),
        rollout.mode,
        rollout.percent,
        row.candidate_version,
        row.actor,
        row.reason,
        aware(row.created_at),
    )


def current_rollout(ws: Workspace) -> RolloutRecord:
    """The rollout in force: the newest row (:data:`NEVER` when there is none)."""
    t = schema.rollout_events
    with ws.engine.connect() as conn:
        row = conn.execute(select(t).order_by(t.c.id.desc()).limit(1)).first()
    return NEVER if row is None else _record(row)


def rollout_history(ws: Workspace, limit: int = 20) -> list[RolloutRecord]:
    """The newest ``limit`` changes, newest first."""
    t = schema.rollout_events
    with ws.engine.connect() as conn:
        return [_record(r) for r in conn.execute(select(t).order_by(t.c.id.desc()).limit(limit))]


def _candidate_for(ws: Workspace, mode: Mode) -> int:
    """The version ``candidate`` names, checked fit for a canary or a shadow."""
    version = resolve_alias(ws, CANDIDATE)
    if version is None:
        raise ModelNotFoundError(
            f"a {mode} needs a candidate, and alias {CANDIDATE!r} names no model version",
            where=str(ws.root),
            fix=f"start it with `visionloop rollout {mode} VERSION`",
        )
    if version == resolve_alias(ws, PRODUCTION):
        raise UsageError(
            f"alias {CANDIDATE!r} names v{version}, which production already serves, so a {mode} "
            "would compare it with itself",
            where=str(ws.root),
            fix=f"start the {mode} with another version: `visionloop rollout {mode} VERSION`",
        )
    return version


def set_rollout(
    ws: Workspace, mode: Mode, percent: float, *, actor: str | None, reason: str | None
) -> RolloutRecord:
    """Record a new rollout (checked: the mode, 0 ≤ percent ≤ 100, a candidate unless ``off``)."""
    rollout = Rollout(mode, float(percent))
    candidate = resolve_alias(ws, CANDIDATE) if mode == "off" else _candidate_for(ws, mode)
    now = utcnow()
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(schema.rollout_events).values(
                mode=rollout.mode,
                percent=rollout.percent,
                candidate_version=candidate,
                actor=actor,
                reason=reason,
                created_at=now,
            )
        )
        row_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    return RolloutRecord(row_id, rollout.mode, rollout.percent, candidate, actor, reason, now)


def rollback(ws: Workspace, *, actor: str | None, reason: str | None) -> RolloutRecord:
    """End the rollout: production answers everything again (the candidate alias stays where it is)."""
    return set_rollout(ws, "off", 0.0, actor=actor, reason=reason)


def start_rollout(
    ws: Workspace,
    mode: Mode,
    version: int | str,
    percent: float,
    *,
    actor: str | None,
    reason: str | None,
    force: bool = False,
) -> RolloutRecord:
    """Point ``candidate`` at ``version`` (an approved one unless ``force``) and start a canary or a
    shadow with it. Everything is checked before the alias moves."""
    if mode == "off":
        raise UsageError("a rollout starts as a canary or a shadow", fix="use `visionloop rollout rollback`")
    Rollout(mode, float(percent))
    model = get_model(ws, version)
    if model.version == resolve_alias(ws, PRODUCTION):
        raise UsageError(
            f"v{model.version} is the production model; a {mode} needs another version",
            where=str(ws.root),
            fix="pick the version to try, e.g. the newest in `visionloop model list`",
        )
    promote(ws, model.version, CANDIDATE, actor=actor, reason=reason, force=force)
    return set_rollout(ws, mode, percent, actor=actor, reason=reason)


def promote_candidate(
    ws: Workspace, *, actor: str | None, reason: str | None
) -> tuple[AliasEvent, RolloutRecord]:
    """Move ``production`` to the candidate's version, then end the rollout (nothing left to compare)."""
    version = resolve_alias(ws, CANDIDATE)
    if version is None:
        raise ModelNotFoundError(
            f"alias {CANDIDATE!r} names no model version, so there is nothing to promote",
            where=str(ws.root),
            fix="start a canary first: `visionloop rollout canary VERSION`",
        )
    event = promote(ws, version, PRODUCTION, actor=actor, reason=reason)
    return event, rollback(ws, actor=actor, reason=reason or f"v{version} promoted to production")
