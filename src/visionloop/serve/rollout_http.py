"""The rollout's admin routes: ``GET /v1/rollout``, ``POST /v1/rollout``, ``POST /v1/rollout/rollback``.

They change which model answers clients, so they need the API key whenever the server has one.
A rollback answers only after the router has flipped: the request after it is production's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from visionloop.errors import UsageError, VisionloopError
from visionloop.serve.rollout import parse_mode
from visionloop.serve.rollout_control import RolloutControl


def _error(status: int, what: str, fix: str) -> JSONResponse:
    return JSONResponse({"error": what, "fix": fix}, status_code=status)


def _refused(exc: VisionloopError) -> JSONResponse:
    return _error(400 if isinstance(exc, UsageError) else 409, exc.what, exc.fix or "")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise UsageError("the body is not JSON", fix='send e.g. {"mode": "canary", "percent": 20}') from None
    if not isinstance(data, dict):
        raise UsageError("the body must be a JSON object", fix='send e.g. {"mode": "canary", "percent": 20}')
    return data


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)[:200]


def rollout_router(control: RolloutControl, authorized: Callable[[Request], bool]) -> APIRouter:
    """The admin routes over ``control``; ``authorized`` decides who may use them."""
    router = APIRouter()
    denied = _error(401, "missing or wrong API key", "send it in the X-API-Key header")

    @router.get("/v1/rollout")
    def status(request: Request) -> Any:
        if not authorized(request):
            return denied
        return control.status()

    @router.post("/v1/rollout")
    async def change(request: Request) -> Any:
        if not authorized(request):
            return denied
        try:
            data = await _body(request)
            mode = parse_mode(data.get("mode"))
            percent = data.get("percent", {"off": 0.0, "shadow": 100.0}.get(mode))
            if not isinstance(percent, int | float) or isinstance(percent, bool):
                raise UsageError(
                    f"the rollout percent must be a number within 0..100, not {percent!r}",
                    fix='send e.g. {"mode": "canary", "percent": 20}',
                )
            return await to_thread.run_sync(
                lambda: control.set(
                    mode, float(percent), actor=_text(data, "by") or "http", reason=_text(data, "reason")
                )
            )
        except VisionloopError as exc:
            return _refused(exc)

    @router.post("/v1/rollout/rollback")
    async def rollback(request: Request) -> Any:
        if not authorized(request):
            return denied
        try:
            data = await _body(request)
        except VisionloopError as exc:
            return _refused(exc)
        return await to_thread.run_sync(
            lambda: control.rollback(actor=_text(data, "by") or "http", reason=_text(data, "reason"))
        )

    return router
