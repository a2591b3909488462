"""Run the pipeline: one attempt of one pipeline run, step by step, every step recorded.

A step whose input hash already has a ``done`` record is skipped and its outputs reused,
so a retry resumes after the last finished step and re-running with nothing new is a
no-op that says so. Only one pipeline executes at a time per workspace: the
``pipeline`` lease (see ``lease.py``) is held for the whole attempt.
"""

from __future__ import annotations

import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from visionloop.errors import PipelineBusyError, PipelineError, StopRequested, UsageError, VisionloopError
from visionloop.pipeline import runs
from visionloop.pipeline.lease import Lease, holder, make_owner
from visionloop.pipeline.steps import STEP_NAMES, STEPS, Context, Hook, Skip, input_hash, quiet
from visionloop.pipeline.triggers import Trigger
from visionloop.workspace import Workspace, utcnow

LEASE = "pipeline"


def execute(ctx: Context, until: str | None = None) -> dict[str, Any]:
    """Run the steps in order (up to and including ``until``); returns the run's outputs."""
    ws = ctx.ws
    skipped_all = True
    for step in STEPS:
        ctx.check_stop()
        t0 = time.perf_counter()
        try:
            inputs = step.inputs(ctx)
        except Skip as why:
            sid = runs.start_step(ws, ctx.run_id, ctx.attempt, step.name, "-" * 64)
            runs.finish_step(ws, sid, "skipped", time.perf_counter() - t0, {"reason": str(why)})
            ctx.hook("step", {"name": step.name, "status": "skipped", "reason": str(why)})
            skipped_all = False  # a decision, not a repeat
            continue
        h = input_hash(step.name, inputs)
        sid = runs.start_step(ws, ctx.run_id, ctx.attempt, step.name, h)
        earlier = runs.done_step(ws, step.name, h)
        if earlier is not None:
            ctx.outputs.update(earlier)
            runs.finish_step(
                ws, sid, "skipped", time.perf_counter() - t0, {**earlier, "reason": "inputs done"}
            )
            ctx.hook("step", {"name": step.name, "status": "skipped", "reason": "same inputs already done"})
        else:
            skipped_all = False
            ctx.hook("step", {"name": step.name, "status": "running"})
            try:
                out = step.run(ctx)
            except Skip as why:
                runs.finish_step(ws, sid, "skipped", time.perf_counter() - t0, {"reason": str(why)})
                ctx.hook("step", {"name": step.name, "status": "skipped", "reason": str(why)})
                continue
            except BaseException as exc:
                runs.finish_step(ws, sid, "failed", time.perf_counter() - t0, {}, _describe(exc))
                raise
            ctx.outputs.update(out)
            secs = time.perf_counter() - t0
            runs.finish_step(ws, sid, "done", secs, out)
            ctx.hook("step", {"name": step.name, "status": "done", "seconds": secs, "outputs": out})
        if step.name == until:
            break
    ctx.outputs["noop"] = skipped_all
    ctx.outputs.setdefault("promoted", False)
    return ctx.outputs


def _describe(exc: BaseException) -> str:
    if isinstance(exc, VisionloopError):
        return f"{type(exc).__name__}: {exc.message}"
    return "".join(traceback.format_exception_only(exc)).strip()


def attempt(
    ws: Workspace,
    run_id: int,
    attempt_no: int,
    *,
    actor: str,
    hook: Hook,
    stop: threading.Event,
    max_attempts: int,
    backoff_s: float,
    until: str | None = None,
    train_overrides: dict[str, Any] | None = None,
) -> runs.PipelineRun:
    """One attempt at run ``run_id`` (the caller holds the pipeline lease); records how it ended:
    ``succeeded``; ``interrupted`` (a stop request: resumed later, not counted as a failure);
    ``retry_wait`` with exponential back-off; or ``failed`` after ``max_attempts``."""
    ctx = Context(ws, run_id, attempt_no, actor, hook, stop, train_overrides=dict(train_overrides or {}))
    try:
        outputs = execute(ctx, until)
    except StopRequested as exc:
        runs.finish_run(ws, run_id, "interrupted", error=exc.message, outputs=ctx.outputs)
    except Exception as exc:
        if attempt_no < max_attempts:
            delay = backoff_s * 2 ** (attempt_no - 1)
            runs.finish_run(
                ws,
                run_id,
                "retry_wait",
                error=_describe(exc),
                outputs=ctx.outputs,
                next_attempt_at=utcnow() + timedelta(seconds=delay),
            )
        else:
            runs.finish_run(ws, run_id, "failed", error=_describe(exc), outputs=ctx.outputs)
    else:
        runs.finish_run(ws, run_id, "succeeded", outputs=outputs, error=None)
    return runs.get_run(ws, run_id)


def run_pipeline(
    ws: Workspace,
    trigger: Trigger | None = None,
    *,
    actor: str | None = None,
    hook: Hook | None = None,
    stop: threading.Event | None = None,
    until: str | None = None,
    train_overrides: dict[str, Any] | None = None,
) -> runs.PipelineRun:
    """Run the whole pipeline once now (``visionloop run``): take the lock, record a run, execute.

    A failed step fails the run (no automatic retry here; the agent retries its own runs)."""
    import uuid

    if until is not None and until not in STEP_NAMES:
        raise UsageError(f"no pipeline step {until!r}", fix=f"choose one of {', '.join(STEP_NAMES)}")
    trigger = trigger or Trigger("manual", f"manual:{uuid.uuid4().hex}", {})
    owner = make_owner("run")
    actor = actor or owner
    with Lease(ws, LEASE, owner, ws.settings.policies.agent.lease_ttl_s) as lease:
        if not lease.held:
            raise PipelineBusyError(
                f"another pipeline run is in progress ({holder(ws, LEASE) or 'its lock is being released'})",
                where=str(ws.root),
                fix="wait for it to finish (see `visionloop pipeline list`), then run again",
            )
        run_id = runs.create_run(ws, trigger, owner)
        if run_id is None:
            raise PipelineError(
                f"a pipeline run for {trigger.key!r} exists already",
                fix="see `visionloop pipeline list`",
            )
        return attempt(
            ws,
            run_id,
            1,
            actor=actor,
            hook=hook or quiet,
            stop=stop or threading.Event(),
            max_attempts=1,
            backoff_s=0,
            until=until,
            train_overrides=train_overrides,
        )
