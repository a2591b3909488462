"""``visionloop serve``: the HTTP server, following an alias (and its rollout) or serving a folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from visionloop.cli import _ws, app, out

if TYPE_CHECKING:
    from visionloop.monitor.process import RecorderProcess


@app.command("serve")
def serve_cmd(
    alias: Annotated[
        str | None,
        typer.Option(help="Serve the version this alias names and follow it (default: production)."),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Serve this bundle folder (see `visionloop bundle`).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    poll_seconds: Annotated[float, typer.Option(help="How often to look at the alias.")] = 1.0,
    api_key: Annotated[
        str | None, typer.Option(envvar="VISIONLOOP_API_KEY", help="Require this key.")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest accepted upload.")] = 10.0,
    graceful_seconds: Annotated[
        int,
        typer.Option(
            help="On SIGTERM: stop accepting connections, let requests in flight finish for at most "
            "this long, then exit 0 (keep it below the orchestrator's grace period)."
        ),
    ] = 20,
    candidate_bundle: Annotated[
        Path | None,
        typer.Option(
            "--candidate-bundle",
            help="With --bundle: a second bundle for canary or shadow (a workspace uses its `candidate` alias).",
        ),
    ] = None,
    rollout: Annotated[
        str,
        typer.Option(
            "--rollout",
            help="With --candidate-bundle: off, canary or shadow (change it via POST /v1/rollout).",
        ),
    ] = "off",
    percent: Annotated[
        float | None,
        typer.Option(
            "--percent", help="With --rollout: share of requests for the candidate (canary 10, shadow 100)."
        ),
    ] = None,
    monitor: Annotated[
        bool | None,
        typer.Option(
            "--monitor/--no-monitor",
            help="Record every prediction for drift monitoring (default: the workspace's monitor.enabled); "
            "needs a workspace (--alias).",
        ),
    ] = None,
) -> None:
    """Serve over HTTP with ONNX Runtime (never torch): /v1/detect, /v1/model, /v1/rollout, /healthz, /readyz,
    /metrics.

    With --alias (the default, `production`) the server swaps in the alias's new version when it moves, and
    follows the workspace's rollout (`visionloop rollout`) with the version the `candidate` alias names."""
    import logging
    import signal

    import uvicorn

    from visionloop.errors import UsageError
    from visionloop.serve.app import create_app
    from visionloop.serve.model import Holder, load
    from visionloop.serve.rollout import Rollout, parse_mode
    from visionloop.serve.rollout_control import RolloutControl

    if alias is not None and bundle is not None:
        raise UsageError("--alias and --bundle exclude each other", fix="serve either an alias or a folder")
    if bundle is not None and monitor:
        raise UsageError(
            "monitoring needs a workspace: its windows, references and signals live there",
            fix="serve an alias (`visionloop serve --alias production`), or drop --monitor",
        )
    if bundle is None and (candidate_bundle is not None or rollout != "off" or percent is not None):
        raise UsageError(
            "--candidate-bundle, --rollout and --percent go with --bundle",
            fix="serving a workspace, start a rollout with `visionloop rollout canary VERSION`",
        )
    mode = parse_mode(rollout)
    split = Rollout(mode, {"off": 0.0, "canary": 10.0, "shadow": 100.0}[mode] if percent is None else percent)
    if poll_seconds <= 0:
        raise UsageError(f"--poll-seconds must be positive, not {poll_seconds}", fix="pass e.g. 1.0")
    if graceful_seconds < 0:
        raise UsageError(
            f"--graceful-seconds must not be negative, not {graceful_seconds}", fix="pass e.g. 20"
        )
    handler = logging.StreamHandler()  # stderr: swaps and refusals, one line each
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("visionloop").addHandler(handler)
    logging.getLogger("visionloop").setLevel(logging.INFO)
    limit = int(max_upload_mb * 2**20)
    recorder: RecorderProcess | None = None
    if bundle is not None:
        holder = Holder(load(bundle))
        candidate = None if candidate_bundle is None else load(candidate_bundle)
        if candidate is not None and candidate.version == holder.current.version:
            raise UsageError(
                f"the candidate bundle is v{candidate.version}, the version production serves",
                where=str(candidate_bundle),
                fix="pass the bundle of another version",
            )
        control = RolloutControl(holder, candidate=candidate, rollout=split)
        api = create_app(holder, api_key=api_key, max_upload_bytes=limit, rollout=control)
        source = str(bundle)
        if candidate is not None:
            source += f", candidate v{candidate.version} from {candidate_bundle} ({mode} {split.percent:g}%)"
        ws = None
    else:
        from visionloop.serve.follow import AliasFollower, open_alias

        alias = alias or "production"
        ws = _ws()
        holder = Holder(open_alias(ws, alias))
        follower = AliasFollower(ws, alias, holder, poll_seconds=poll_seconds)
        control = RolloutControl(holder, ws=ws, poll_seconds=poll_seconds)
        if ws.settings.monitor.enabled if monitor is None else monitor:
            from visionloop.monitor.process import RecorderProcess

            recorder = RecorderProcess(ws).start(warm=[holder.current.version])
        api = create_app(
            holder,
            api_key=api_key,
            max_upload_bytes=limit,
            follower=follower,
            rollout=control,
            observer=None if recorder is None else recorder.observe,
        )
        source = f"alias {alias!r} (following it every {poll_seconds:g} s)"
        if recorder is not None:
            source += ", monitored"
    out.print(
        f"serving v{api.state.holder.current.version} from {source} on http://{host}:{port}", highlight=False
    )
    server = uvicorn.Server(
        uvicorn.Config(
            api, host=host, port=port, log_level="warning", timeout_graceful_shutdown=graceful_seconds
        )
    )

    def on_term(_sig: int, _frame: Any) -> None:
        # uvicorn handles SIGTERM while it runs (closes the listener, drains, stops) and then raises the
        # signal again for the handler it found, this one: a drained stop exits 0, not killed by the
        # signal. One that arrives before uvicorn took over has nothing to drain.
        if not server.should_exit:
            raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if recorder is not None:
            recorder.stop()  # drains the queue and closes the open windows, before the workspace closes
        if ws is not None:
            ws.close()
    if not server.started:
        raise SystemExit(3)  # uvicorn's exit status when it cannot start (e.g. the port is taken)
