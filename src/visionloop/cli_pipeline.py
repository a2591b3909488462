"""``visionloop run``, ``agent`` and ``pipeline list|show``."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from visionloop.cli import JsonOpt, _table, _ws, app, emit, out, pipeline_app
from visionloop.progress import err

if TYPE_CHECKING:
    from visionloop.pipeline.runs import PipelineRun

STATUS_STYLE = {"done": "green", "skipped": "dim", "failed": "red", "running": "yellow"}


@contextmanager
def pipeline_progress(enabled: bool = True) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """Log lines per step and a progress bar over training batches (stderr)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if not enabled:
        yield lambda _k, _i: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("pipeline", total=None, info="")

        def hook(kind: str, info: dict[str, Any]) -> None:
            if kind == "run":
                err.print(
                    f"[bold]pipeline run {info['id']}[/] (trigger {info['trigger']}, attempt {info['attempt']}) "
                    f"{escape(str(info['detail']))}",
                    highlight=False,
                )
            elif kind == "step":
                name, status = info["name"], info["status"]
                if status == "running":
                    bar.update(task, description=f"{name}", completed=0, total=None, info="")
                    return
                style = STATUS_STYLE.get(status, "white")
                extra = f" ({info['seconds']:.1f} s)" if "seconds" in info else ""
                why = f": {escape(info['reason'])}" if info.get("reason") else ""
                err.print(f"  [{style}]{name:<8} {status}[/]{extra}{why}", highlight=False)
            elif kind == "train.step":
                bar.update(task, advance=1, info=f"loss {info['loss']:.3f}")
            elif kind == "train.epoch":
                bar.update(task, description=f"train epoch {info['epoch']}/{info['epochs']}")
                err.print(
                    f"    epoch {info['epoch']}/{info['epochs']}: loss {info['loss']:.3f}, "
                    f"val mAP50-95 {info['score']:.3f}",
                    highlight=False,
                )
            elif kind == "autolabel":
                err.print(
                    f"autolabel v{info['model_version']}: {info['images_proposed']} images proposed, "
                    f"{info['tasks_created']} review tasks, {info['auto_accepted']} auto-accepted",
                    highlight=False,
                )
            elif kind == "autolabel_error":
                err.print(f"[yellow]autolabel skipped:[/] {escape(info['error'])}", highlight=False)
            elif kind == "run_end":
                err.print(f"  run {info['id']} → [bold]{info['status']}[/]", highlight=False)

        yield hook


def render_run(run: PipelineRun) -> None:
    """A pipeline run as a table of its steps."""
    rows = [
        [
            s.name,
            s.attempt,
            s.status,
            f"{s.seconds:.1f}" if s.seconds is not None else "",
            escape(s.error or s.outputs.get("reason") or _brief(s.outputs)),
        ]
        for s in run.steps
    ]
    out.print(
        _table(
            f"pipeline run {run.id} — {run.trigger} ({escape(run.idempotency_key)}) — {run.status}",
            ["step", "attempt", "status", "seconds", "outputs / reason"],
            rows,
        )
    )
    if run.error:
        out.print(f"[red]error:[/] {escape(run.error)}", highlight=False)


def _brief(outputs: dict[str, Any]) -> str:
    keep = ("dataset", "model_version", "map50_95", "passed", "status", "size_mb", "promoted", "to_version")
    parts = []
    for k in keep:
        if k in outputs:
            v = outputs[k]
            v = v[:12] if isinstance(v, str) and len(v) == 64 else v
            parts.append(f"{k}={round(v, 3) if isinstance(v, float) else v}")
    return " ".join(parts)


def _summary(run: PipelineRun) -> str:
    o = run.outputs
    if run.status != "succeeded":
        return f"pipeline run {run.id} {run.status}: {run.error}"
    if o.get("noop"):
        return f"pipeline run {run.id}: nothing new — every step's inputs were already done (no-op)"
    if o.get("promoted"):
        return f"pipeline run {run.id}: v{o['model_version']} is now production"
    return f"pipeline run {run.id} finished; v{o.get('model_version')} was not promoted"


@app.command("run")
def run_cmd(
    until: Annotated[
        str | None,
        typer.Option(help="Stop after this step (snapshot, train, evaluate, gate, export, bundle)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override [train] epochs.")] = None,
    time_budget_min: Annotated[float | None, typer.Option(help="Override [train] time_budget_min.")] = None,
    trigger: Annotated[
        str, typer.Option(help="Why it runs: manual, drift or degradation (as monitoring hands it in).")
    ] = "manual",
    key: Annotated[
        str | None,
        typer.Option(help="Idempotency key: a second run with the same key is refused (default: unique)."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Recorded with the trigger.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the pipeline now: snapshot → train → evaluate → gate → export → bundle → promote.

    Steps whose inputs were already done are skipped; with nothing new it is a no-op and says so."""
    import uuid

    from visionloop.errors import UsageError
    from visionloop.pipeline.runner import run_pipeline
    from visionloop.pipeline.triggers import Trigger

    if trigger not in ("manual", "drift", "degradation"):
        raise UsageError(f"no trigger kind {trigger!r} for `run`", fix="use manual, drift or degradation")
    detail = {"reason": reason} if reason else {}
    started_by = Trigger(trigger, key or f"{trigger}:{uuid.uuid4().hex}", detail)
    overrides = {"epochs": epochs, "time_budget_min": time_budget_min}
    with pipeline_progress(not as_json) as hook:
        run = run_pipeline(
            _ws(),
            started_by,
            hook=hook,
            until=until,
            train_overrides={k: v for k, v in overrides.items() if v is not None},
        )

    def render() -> None:
        render_run(run)
        out.print(_summary(run), highlight=False)

    emit(run.to_dict(), as_json, render)
    if run.status != "succeeded":
        raise typer.Exit(8)


@app.command("agent")
def agent_cmd(
    once: Annotated[bool, typer.Option("--once", help="One round, then exit (for cron or CI).")] = False,
    max_runs: Annotated[int | None, typer.Option(help="Exit after this many pipeline attempts.")] = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between rounds (default: policies.agent.interval_s).")
    ] = None,
) -> None:
    """The daemon: watch the retrain triggers (new labeled items, schedule) and run the pipeline.

    Two agents never train at once; one trigger condition starts one run; failed runs are retried
    with back-off; SIGTERM stops it cleanly (a run in progress stops at its next step boundary)."""
    from visionloop.pipeline.agent import Agent

    ws = _ws()
    with pipeline_progress() as hook:
        agent = Agent(ws, hook=hook, interval_s=interval)

        def on_term(_sig: int, _frame: Any) -> None:
            err.print("stopping: finishing the current step, then exiting")
            agent.stop.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        policy = ws.settings.policies.retrain
        err.print(
            f"agent {agent.owner} watching {ws.root}: retrain at {policy.min_new_items} new labeled items"
            + (f", schedule {policy.schedule!r}" if policy.schedule else ""),
            highlight=False,
        )
        if once:
            agent.tick()
        else:
            agent.run_forever(max_runs=max_runs)
    err.print("agent stopped")


@pipeline_app.command("list")
def list_cmd(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20, as_json: JsonOpt = False
) -> None:
    """Pipeline runs, newest first: trigger, status, attempts, outputs."""
    from visionloop.pipeline.runs import list_runs

    found = list_runs(_ws(), limit)
    rows = [
        [
            r.id,
            r.trigger,
            r.status,
            r.attempts,
            r.created_at.isoformat()[:19],
            f"{sum(s.seconds or 0 for s in r.steps):.1f}",
            escape(_brief(r.outputs) or (r.error or "")[:80]),
        ]
        for r in found
    ]
    emit(
        [r.to_dict() for r in found],
        as_json,
        lambda: out.print(
            _table(
                "pipeline runs",
                ["id", "trigger", "status", "attempts", "started", "seconds", "outputs"],
                rows,
            )
        ),
    )


@pipeline_app.command("show")
def show_cmd(
    run_id: Annotated[int, typer.Argument(help="Pipeline run id.")], as_json: JsonOpt = False
) -> None:
    """One pipeline run: its trigger and every step's status, timing, outputs and error."""
    from visionloop.pipeline.runs import get_run

    run = get_run(_ws(), run_id)
    emit(run.to_dict(), as_json, lambda: render_run(run))
