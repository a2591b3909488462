"""Aliases: movable names on model versions (``production``, ``candidate``, …).

Every move appends one ``alias_events`` row (from, to, actor, reason, time) and rows
are never updated or deleted, so the history tells what served when. Replaying it
gives a stack: ``promote`` pushes a version, ``rollback`` pops back to the version
the alias named before the current one — rolling back twice goes two steps back.

A move is a compare-and-set on the ``aliases`` row (its version and time), written
in the same transaction as its event, so concurrent moves never interleave.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.errors import PromotionError, UsageError
from visionloop.registry.versions import ModelVersion, get_model, parse_version
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

_ALIAS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
_MAX_TRIES = 10


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: from ``from_version`` (None on its first promote) to ``to_version``."""

    id: int
    alias: str
    action: str  # promote, rollback
    from_version: int | None
    to_version: int
    actor: str | None
    reason: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d


def check_alias_name(name: str) -> None:
    """Refuse names that cannot be told apart from a version number or are not plain words."""
    if not _ALIAS_NAME.match(name) or parse_version(name) is not None:
        raise UsageError(
            f"invalid alias name {name!r}",
            fix="start with a letter, use letters, digits, `_`, `.`, `-` (at most 100), "
            "and do not write it like a version number (`v3`)",
        )


def _event(row: Any) -> AliasEvent:
    return AliasEvent(
        row.id,
        row.name,
        row.action,
        row.previous_version,
        row.version,
        row.actor,
        row.reason,
        aware(row.created_at),
    )


def alias_history(ws: Workspace, alias: str = "production") -> list[AliasEvent]:
    """Every move of ``alias``, oldest first."""
    t = schema.alias_events
    with ws.engine.connect() as conn:
        return [_event(r) for r in conn.execute(select(t).where(t.c.name == alias).order_by(t.c.id))]


def resolve_alias(ws: Workspace, alias: str) -> int | None:
    """The version ``alias`` names now, or None."""
    t = schema.aliases
    with ws.engine.connect() as conn:
        v = conn.execute(select(t.c.version).where(t.c.name == alias)).scalar()
    return None if v is None else int(v)


def aliases_of(ws: Workspace, version: int) -> list[str]:
    """The aliases naming ``version`` now, sorted."""
    t = schema.aliases
    with ws.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(select(t.c.name).where(t.c.version == version)))


def aliases_by_version(ws: Workspace) -> dict[int, list[str]]:
    """Every alias, grouped by the version it names."""
    out: dict[int, list[str]] = defaultdict(list)
    with ws.engine.connect() as conn:
        for name, version in conn.execute(select(schema.aliases.c.name, schema.aliases.c.version)):
            out[int(version)].append(name)
    return {v: sorted(names) for v, names in out.items()}


def serving_stack(events: Sequence[AliasEvent]) -> list[int]:
    """The versions an alias has named, oldest first, as a rollback sees them (pure)."""
    stack: list[int] = []
    for e in events:
        if e.action == "rollback":
            stack.pop()
        else:
            stack.append(e.to_version)
    return stack


def _current(ws: Workspace, alias: str) -> tuple[int, datetime] | None:
    t = schema.aliases
    with ws.engine.connect() as conn:
        row = conn.execute(select(t.c.version, t.c.updated_at).where(t.c.name == alias)).first()
    return None if row is None else (int(row.version), row.updated_at)


def _move(
    ws: Workspace,
    alias: str,
    seen: tuple[int, datetime] | None,
    version: int,
    action: str,
    actor: str | None,
    reason: str | None,
) -> AliasEvent | None:
    """Move ``alias`` to ``version`` if it still is as ``seen``; its event, or None if it moved meanwhile."""
    t, now = schema.aliases, utcnow()
    try:
        with ws.engine.begin() as conn:
            if seen is None:
                conn.execute(insert(t).values(name=alias, version=version, updated_at=now))
            else:
                q = update(t).where(t.c.name == alias, t.c.version == seen[0], t.c.updated_at == seen[1])
                if not conn.execute(q.values(version=version, updated_at=now)).rowcount:
                    return None
            res = conn.execute(
                insert(schema.alias_events).values(
                    name=alias,
                    version=version,
                    previous_version=seen[0] if seen else None,
                    action=action,
                    actor=actor,
                    reason=reason,
                    created_at=now,
                )
            )
            event_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    except IntegrityError:  # another first promote of this alias won
        return None
    return AliasEvent(event_id, alias, action, seen[0] if seen else None, version, actor, reason, now)


def _refusal(model: ModelVersion) -> tuple[str, str]:
    v = model.version
    if model.status == "registered":
        return "it has not been gated yet", f"run `visionloop model gate {v}` first"
    if model.status == "gate_failed":
        failed = [c["name"] for c in (model.gate_report or {}).get("checks", []) if c["status"] == "fail"]
        return (
            f"it failed its gate ({', '.join(failed) or 'see its report'})",
            f"see `visionloop model show {v}` and train a better model",
        )
    if model.status == "awaiting_approval":
        return (
            "it passed its gate and awaits a person's approval",
            f"run `visionloop model approve {v} --by NAME --reason TEXT`",
        )
    return (
        f"it was rejected by {model.decided_by or 'someone'} ({model.decision_reason or 'no reason given'})",
        "promote another version",
    )


def promote(
    ws: Workspace,
    version: int | str,
    alias: str = "production",
    *,
    actor: str | None,
    reason: str | None,
    force: bool = False,
) -> AliasEvent:
    """Point ``alias`` at ``version`` (only an ``approved`` version unless ``force``).

    Promoting the version the alias already names changes nothing and returns its last event."""
    check_alias_name(alias)
    model = get_model(ws, version)
    if model.status != "approved":
        why, fix = _refusal(model)
        if not force:
            raise PromotionError(
                f"model version {model.version} is `{model.status}`, not `approved`, so it cannot "
                f"become {alias!r}: {why}",
                where=str(ws.root),
                fix=f"{fix}, or pass --force to promote it anyway (recorded in the history)",
            )
        reason = f"forced while `{model.status}`" + (f": {reason}" if reason else "")
    for _ in range(_MAX_TRIES):
        seen = _current(ws, alias)
        history = alias_history(ws, alias) if seen is not None and seen[0] == model.version else []
        if history:
            return history[-1]
        event = _move(ws, alias, seen, model.version, "promote", actor, reason)
        if event is not None:
            return event
    raise PromotionError(
        f"alias {alias!r} kept moving while promoting version {model.version}",
        fix=f"look at `visionloop model history --alias {alias}` and promote again",
    )


def rollback(
    ws: Workspace, alias: str = "production", *, actor: str | None, reason: str | None
) -> AliasEvent:
    """Move ``alias`` back to the version it named before the current one."""
    seen = _current(ws, alias)  # read before the history: a move in between fails the compare-and-set
    stack = serving_stack(alias_history(ws, alias))
    if seen is None or len(stack) < 2:
        what = "it names no model version" if seen is None else f"version {seen[0]} is the first it named"
        raise PromotionError(
            f"alias {alias!r} has nothing to roll back to: {what}",
            where=str(ws.root),
            fix=f"see `visionloop model history --alias {alias}`; promote a version instead",
        )
    event = _move(ws, alias, seen, stack[-2], "rollback", actor, reason)
    if event is None:
        raise PromotionError(
            f"alias {alias!r} moved while rolling back",
            fix=f"look at `visionloop model history --alias {alias}` and roll back again if still needed",
        )
    return event
