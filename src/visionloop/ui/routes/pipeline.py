"""Pipeline pages: runs with their steps, timings and errors; starting a run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from visionloop.pipeline.runs import get_run, list_runs
from visionloop.ui.access import Identity, identity
from visionloop.ui.web import page, see_other
from visionloop.workspace import Workspace

router = APIRouter()


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.get("/pipeline")
def runs_page(request: Request, started: bool = False) -> Response:
    """Pipeline runs, newest first, and a button to start one."""
    return page(request, "pipeline.html", runs=list_runs(_ws(request), 100), started=started)


@router.get("/pipeline/{run_id}")
def run_page(request: Request, run_id: int) -> Response:
    """One run: its trigger, and every step's attempt, status, seconds, outputs or error."""
    return page(request, "pipeline_run.html", r=get_run(_ws(request), run_id))


@router.get("/api/pipeline/runs")
def runs_api(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Pipeline runs as JSON, newest first."""
    return [r.to_dict() for r in list_runs(_ws(request), limit)]


@router.post("/pipeline/runs")
def start_run(request: Request, who: Annotated[Identity, Depends(identity)]) -> Response:
    """Start a pipeline run now (in the background), with the caller as its actor."""
    request.app.state.start_pipeline(_ws(request), who.user.name)
    return see_other("/pipeline?started=true")


@router.post("/api/pipeline/runs")
def start_run_api(request: Request, who: Annotated[Identity, Depends(identity)]) -> JSONResponse:
    """Start a pipeline run now; 202 (watch it with GET /api/pipeline/runs), 409 when one runs already."""
    request.app.state.start_pipeline(_ws(request), who.user.name)
    return JSONResponse({"started": True, "actor": who.user.name}, status_code=202)
