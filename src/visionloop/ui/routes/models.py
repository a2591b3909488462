"""Model pages: versions with metrics, one version (gate report, PR curves, confusion matrix, lineage),
alias history, and the decisions an approver takes (approve, reject, promote, roll back)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from visionloop.errors import BlobNotFoundError
from visionloop.pipeline.runs import list_runs
from visionloop.registry.aliases import alias_history, aliases_by_version, promote, rollback
from visionloop.registry.approvals import approve, reject
from visionloop.registry.versions import get_model, list_models
from visionloop.store import schema
from visionloop.ui.access import Identity, identity
from visionloop.ui.web import page, see_other
from visionloop.workspace import Workspace

router = APIRouter()
#: Artifacts served to the browser, by suffix (weights and model files are not).
ARTIFACT_TYPES = {
    ".png": "image/png",
    ".json": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
PLOTS = ("pr_curves.png", "confusion_matrix.png")


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _training_run(ws: Workspace, run_id: int) -> dict[str, Any] | None:
    t = schema.runs
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(t.c.id, t.c.kind, t.c.status, t.c.config, t.c.created_at, t.c.finished_at).where(
                t.c.id == run_id
            )
        ).first()
    return None if row is None else dict(row._mapping)


def _alias_names(ws: Workspace) -> list[str]:
    with ws.engine.connect() as conn:
        return sorted({n for (n,) in conn.execute(select(schema.alias_events.c.name).distinct())})


@router.get("/models")
def models(request: Request) -> Response:
    """Every model version, newest first, with status, aliases and test metrics."""
    ws = _ws(request)
    return page(request, "models.html", models=list_models(ws), aliases=aliases_by_version(ws))


@router.get("/models/{version}")
def model(request: Request, version: str) -> Response:
    """One model version: metrics per class, gate report, plots, lineage, the moves of its aliases."""
    ws = _ws(request)
    mv = get_model(ws, version)
    pipeline_runs = [r for r in list_runs(ws, 500) if r.outputs.get("model_version") == mv.version]
    events = [
        e
        for name in _alias_names(ws)
        for e in alias_history(ws, name)
        if mv.version in (e.to_version, e.from_version)
    ]
    bundle = mv.artifacts.get("bundle.json")
    manifest = json.loads(ws.blobs.get(bundle)) if bundle and ws.blobs.has(bundle) else None
    return page(
        request,
        "model.html",
        m=mv,
        aliases=aliases_by_version(ws).get(mv.version, []),
        plots=[p for p in PLOTS if p in mv.artifacts],
        run=_training_run(ws, mv.run_id),
        pipeline_runs=pipeline_runs,
        events=sorted(events, key=lambda e: e.id),
        bundle=manifest,
        self_approval=ws.settings.gates.allow_self_approval,
    )


@router.get("/models/{version}/artifacts/{name}")
def artifact(request: Request, version: str, name: str) -> Response:
    """A plot or report of a model version (PNG, JSON, Markdown; never the weights)."""
    ws = _ws(request)
    mv = get_model(ws, version)
    suffix = name[name.rfind(".") :] if "." in name else ""
    if name not in mv.artifacts or suffix not in ARTIFACT_TYPES:
        raise BlobNotFoundError(
            f"model version {mv.version} has no viewable artifact {name!r}",
            fix=f"see the artifacts on /models/{mv.version}",
        )
    return Response(
        ws.blobs.get(mv.artifacts[name]),
        media_type=ARTIFACT_TYPES[suffix],
        headers={"Cache-Control": "private, max-age=86400"},
    )


@router.get("/aliases")
def aliases(request: Request) -> Response:
    """Every alias and every move it made: what served when, from → to, who, why."""
    ws = _ws(request)
    histories = {name: list(reversed(alias_history(ws, name))) for name in _alias_names(ws)}
    current = {name: events[0].to_version for name, events in histories.items() if events}
    return page(request, "aliases.html", histories=histories, current=current)


@router.post("/models/{version}/approve")
def approve_model(
    request: Request,
    version: str,
    who: Annotated[Identity, Depends(identity)],
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Approve a version awaiting approval (nobody approves a model they trained, unless configured)."""
    mv = approve(_ws(request), version, by=who.user.name, reason=reason)
    return see_other(f"/models/{mv.version}")


@router.post("/models/{version}/reject")
def reject_model(
    request: Request,
    version: str,
    who: Annotated[Identity, Depends(identity)],
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Reject a version for good."""
    mv = reject(_ws(request), version, by=who.user.name, reason=reason)
    return see_other(f"/models/{mv.version}")


@router.post("/models/{version}/promote")
def promote_model(
    request: Request,
    version: str,
    who: Annotated[Identity, Depends(identity)],
    alias: Annotated[str, Form()] = "production",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Point an alias at an approved version (recorded with who and why)."""
    event = promote(_ws(request), version, alias, actor=who.user.name, reason=reason.strip() or None)
    return see_other(f"/models/{event.to_version}")


@router.post("/aliases/{alias}/rollback")
def rollback_alias(
    request: Request,
    alias: str,
    who: Annotated[Identity, Depends(identity)],
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Move an alias back to the version it named before."""
    rollback(_ws(request), alias, actor=who.user.name, reason=reason.strip() or None)
    return see_other("/aliases")
