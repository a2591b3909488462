"""When to retrain: a pure policy over the state of the loop (no disk, no database, no clock).

Trigger kinds: ``threshold`` (at least N labeled items new or relabeled since the
production model's dataset version), ``schedule`` (a cron slot passed), ``drift`` /
``degradation`` (signals handed in by monitoring) and ``manual``. Each trigger carries
an idempotency key that names the *condition*, not the moment it was seen, so every
agent that sees the same condition computes the same key and the database lets one
pipeline run have it:

- threshold: the production model's dataset version and how many whole multiples of
  N new items exist (so the first N start one run; the next N another — debounced);
  per-class minimums (``min_new_per_class``) must also hold — new boxes of those classes;
- schedule: the cron slot's time;
- signals: the key monitoring gave them (one per window and kind).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from visionloop.config import RetrainPolicy

KINDS = ("threshold", "schedule", "drift", "degradation", "manual")


@dataclass(frozen=True)
class Trigger:
    kind: str
    key: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopState:
    """What the policy looks at."""

    production_version: int | None
    production_dataset: str | None  # the dataset version the production model was trained on
    labeled: int  # labeled items now
    new_items: int  # labeled items whose image or labels are not in the production dataset version
    signals: Sequence[Trigger] = ()  # drift / degradation triggers handed in by monitoring
    new_boxes_per_class: Mapping[str, int] = field(default_factory=dict)  # boxes on those new items


def schedule_slot(cron: str, now: datetime) -> datetime | None:
    """The latest time at or before ``now`` that ``cron`` names (None without a schedule)."""
    if not cron:
        return None
    from croniter import croniter

    minute = now.replace(second=0, microsecond=0)
    if croniter.match(cron, minute):  # cron has minute resolution: this minute's slot counts
        return minute
    prev: datetime = croniter(cron, now).get_prev(datetime)
    return prev


def decide(
    state: LoopState, policy: RetrainPolicy, now: datetime, *, since: datetime | None = None
) -> list[Trigger]:
    """The triggers that hold now, each with its idempotency key (the caller starts one run per key).

    ``since``: schedule slots before it are not triggers (an agent's first start does not replay
    every slot in history, only the latest one after ``since``)."""
    out: list[Trigger] = []
    n = policy.min_new_items
    short = {
        c: (state.new_boxes_per_class.get(c, 0), m)
        for c, m in policy.min_new_per_class.items()
        if state.new_boxes_per_class.get(c, 0) < m
    }
    if state.new_items >= n and not short:
        base = state.production_dataset[:16] if state.production_dataset else "none"
        out.append(
            Trigger(
                "threshold",
                f"threshold:{base}:{state.new_items // n}",
                {
                    "new_items": state.new_items,
                    "min_new_items": n,
                    "production_version": state.production_version,
                    "production_dataset": state.production_dataset,
                    "new_boxes_per_class": dict(state.new_boxes_per_class),
                },
            )
        )
    slot = schedule_slot(policy.schedule, now)
    if slot is not None and (since is None or slot >= since) and state.labeled > 0:
        out.append(
            Trigger(
                "schedule",
                f"schedule:{slot.isoformat()}",
                {"cron": policy.schedule, "slot": slot.isoformat()},
            )
        )
    out.extend(s for s in state.signals if s.kind in ("drift", "degradation"))
    return out
