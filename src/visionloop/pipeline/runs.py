"""Pipeline runs and their steps in the metadata database.

A run is created under its trigger's idempotency key (unique), so one condition
starts one run however many agents see it. Each attempt at a step is a row with its
input hash, status, outputs and timing; a later step with the same name and input
hash finds the earlier ``done`` row and is skipped with its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.errors import UsageError
from visionloop.pipeline.triggers import Trigger
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

R, S = schema.pipeline_runs, schema.pipeline_steps


@dataclass(frozen=True)
class StepRecord:
    name: str
    attempt: int
    status: str  # running, done, skipped, failed, waiting
    input_hash: str
    outputs: dict[str, Any]
    error: str | None
    started_at: datetime
    seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "started_at": self.started_at.isoformat()}


@dataclass(frozen=True)
class PipelineRun:
    id: int
    trigger: str
    idempotency_key: str
    detail: dict[str, Any]
    status: str  # running, succeeded, failed, retry_wait, interrupted
    attempts: int
    next_attempt_at: datetime | None
    owner: str | None
    outputs: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    steps: list[StepRecord]

    def to_dict(self) -> dict[str, Any]:
        d = {**self.__dict__, "steps": [s.to_dict() for s in self.steps]}
        for k in ("created_at", "finished_at", "next_attempt_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def _pk(res: Any) -> int:
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def create_run(ws: Workspace, trigger: Trigger, owner: str) -> int | None:
    """A new run for ``trigger`` (status ``running``, attempt 1); None when its key already has one."""
    try:
        with ws.engine.begin() as conn:
            res = conn.execute(
                insert(R).values(
                    trigger=trigger.kind,
                    idempotency_key=trigger.key,
                    detail=trigger.detail,
                    status="running",
                    attempts=1,
                    owner=owner,
                    outputs={},
                    created_at=utcnow(),
                )
            )
            return _pk(res)
    except IntegrityError:
        return None


def claim_retry(ws: Workspace, run_id: int, owner: str, expected_status: str) -> int | None:
    """Move a waiting run back to ``running`` under ``owner`` (compare-and-set on its status);
    returns its new attempt number, None when another agent took it first."""
    run = get_run(ws, run_id)
    attempt = run.attempts + (1 if expected_status == "retry_wait" else 0)
    with ws.engine.begin() as conn:
        moved = conn.execute(
            update(R)
            .where(R.c.id == run_id, R.c.status == expected_status, R.c.attempts == run.attempts)
            .values(status="running", attempts=attempt, owner=owner, next_attempt_at=None, error=None)
        ).rowcount
    return attempt if moved else None


def finish_run(ws: Workspace, run_id: int, status: str, **values: Any) -> None:
    final = status in ("succeeded", "failed")
    with ws.engine.begin() as conn:
        conn.execute(
            update(R)
            .where(R.c.id == run_id)
            .values(status=status, finished_at=utcnow() if final else None, **values)
        )


def due_runs(ws: Workspace, now: datetime) -> list[PipelineRun]:
    """Runs waiting for a retry whose time has come, and interrupted runs, oldest first."""
    with ws.engine.connect() as conn:
        ids = conn.execute(
            select(R.c.id)
            .where(
                ((R.c.status == "retry_wait") & (R.c.next_attempt_at <= now)) | (R.c.status == "interrupted")
            )
            .order_by(R.c.id)
        ).scalars()
        return [get_run(ws, i) for i in list(ids)]


def stale_running(ws: Workspace) -> list[PipelineRun]:
    """Runs still marked ``running`` (only meaningful while holding the pipeline lock: then nobody is)."""
    with ws.engine.connect() as conn:
        ids = list(conn.execute(select(R.c.id).where(R.c.status == "running")).scalars())
    return [get_run(ws, i) for i in ids]


def start_step(ws: Workspace, run_id: int, attempt: int, name: str, input_hash: str) -> int:
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(S).values(
                run_id=run_id,
                attempt=attempt,
                name=name,
                status="running",
                input_hash=input_hash,
                outputs={},
                started_at=utcnow(),
            )
        )
        return _pk(res)


def finish_step(
    ws: Workspace,
    step_id: int,
    status: str,
    seconds: float,
    outputs: dict[str, Any],
    error: str | None = None,
) -> None:
    with ws.engine.begin() as conn:
        conn.execute(
            update(S)
            .where(S.c.id == step_id)
            .values(status=status, seconds=round(seconds, 3), outputs=outputs, error=error)
        )


def done_step(ws: Workspace, name: str, input_hash: str) -> dict[str, Any] | None:
    """The outputs of an earlier step ``name`` that completed on the same inputs, if any."""
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(S.c.outputs)
            .where(S.c.name == name, S.c.input_hash == input_hash, S.c.status == "done")
            .order_by(S.c.id.desc())
            .limit(1)
        ).first()
    return None if row is None else dict(row[0])


def _steps(ws: Workspace, run_id: int) -> list[StepRecord]:
    with ws.engine.connect() as conn:
        rows = conn.execute(select(S).where(S.c.run_id == run_id).order_by(S.c.id)).all()
    return [
        StepRecord(
            r.name,
            r.attempt,
            r.status,
            r.input_hash,
            dict(r.outputs),
            r.error,
            aware(r.started_at),
            r.seconds,
        )
        for r in rows
    ]


def get_run(ws: Workspace, run_id: int) -> PipelineRun:
    with ws.engine.connect() as conn:
        r = conn.execute(select(R).where(R.c.id == run_id)).first()
    if r is None:
        raise UsageError(
            f"no pipeline run {run_id}", where=str(ws.root), fix="see `visionloop pipeline list`"
        )
    return PipelineRun(
        r.id,
        r.trigger,
        r.idempotency_key,
        dict(r.detail),
        r.status,
        r.attempts,
        aware(r.next_attempt_at) if r.next_attempt_at else None,
        r.owner,
        dict(r.outputs),
        r.error,
        aware(r.created_at),
        aware(r.finished_at) if r.finished_at else None,
        _steps(ws, r.id),
    )


def list_runs(ws: Workspace, limit: int = 50) -> list[PipelineRun]:
    """The newest pipeline runs first."""
    with ws.engine.connect() as conn:
        ids = list(conn.execute(select(R.c.id).order_by(R.c.id.desc()).limit(limit)).scalars())
    return [get_run(ws, i) for i in ids]
