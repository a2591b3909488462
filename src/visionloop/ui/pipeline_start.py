"""Starting a pipeline run from the dashboard: the same ``run_pipeline`` as ``visionloop run``, in a
background thread, with the person who asked for it as the run's actor."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from visionloop.errors import PipelineBusyError, VisionloopError
from visionloop.workspace import Workspace

#: ``(workspace, actor)`` → starts a run and returns at once; raises PipelineBusyError when one runs.
PipelineStarter = Callable[[Workspace, str], None]
log = logging.getLogger("visionloop.ui")


def _run(ws: Workspace, actor: str) -> None:
    from visionloop.pipeline.runner import run_pipeline

    try:
        run = run_pipeline(ws, actor=actor)
        log.info("pipeline run %s for %s: %s", run.id, actor, run.status)
    except VisionloopError as exc:  # recorded on the run when it got that far; logged either way
        log.warning("pipeline run for %s: %s", actor, exc.message)


def start_in_thread(ws: Workspace, actor: str) -> None:
    """Start a pipeline run for ``actor`` in a daemon thread (refused while another holds the lock)."""
    from visionloop.pipeline.lease import holder
    from visionloop.pipeline.runner import LEASE

    busy = holder(ws, LEASE)
    if busy:
        raise PipelineBusyError(
            f"another pipeline run is in progress ({busy})",
            where=str(ws.root),
            fix="wait for it to finish, then start one again",
        )
    threading.Thread(target=_run, args=(ws, actor), name="visionloop-ui-pipeline", daemon=True).start()
