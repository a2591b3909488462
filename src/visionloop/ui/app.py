"""The dashboard's FastAPI app: pages and JSON routes over the same service functions as the CLI.

``create_app(ws)`` wires the routers, the access guard (run before every route), the error
pages and the security headers. Library errors become answers here: not found → 404, a refused
decision (approval, promotion, a busy pipeline) → 409, other mistakes → 400; pages get an HTML
page with the message, ``/api/`` routes JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from visionloop.errors import (
    BlobNotFoundError,
    ModelError,
    ModelNotFoundError,
    PipelineError,
    TaskConflictError,
    TaskNotFoundError,
    VersionNotFoundError,
    VisionloopError,
)
from visionloop.ui import access
from visionloop.ui.pipeline_start import PipelineStarter, start_in_thread
from visionloop.ui.routes import datasets, models, monitor, pipeline, review, session, users
from visionloop.ui.web import page, see_other
from visionloop.workspace import Workspace

# Only this site's own files: no inline script or style, no framing, no third-party anything.
CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _status(exc: VisionloopError) -> int:
    if isinstance(exc, ModelNotFoundError | VersionNotFoundError | BlobNotFoundError | TaskNotFoundError):
        return 404
    if isinstance(exc, ModelError | PipelineError | TaskConflictError):
        return 409
    return 400


def _problem(request: Request, status: int, title: str, message: str, fix: str | None = None) -> Response:
    if access.is_api(request.url.path):
        return JSONResponse({"error": title, "message": message, "fix": fix}, status_code=status)
    return page(request, "error.html", status_code=status, title=title, message=message, fix=fix)


def create_app(
    ws: Workspace, *, start_pipeline: PipelineStarter | None = None, secure_cookies: bool = False
) -> FastAPI:
    """The dashboard over ``ws``. ``start_pipeline`` starts a pipeline run for a person (default: in a
    background thread); ``secure_cookies`` marks cookies Secure (behind HTTPS)."""
    app = FastAPI(
        title="visionloop dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(access.guard)],
    )
    app.state.ws = ws
    app.state.start_pipeline = start_pipeline or start_in_thread
    app.state.secure_cookies = secure_cookies
    static = Path(str(files("visionloop.ui") / "static"))
    app.mount("/static", StaticFiles(directory=static), name="static")
    for module in (session, datasets, models, monitor, pipeline, review, users):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(access.NotSignedIn)
    async def not_signed_in(request: Request, _exc: access.NotSignedIn) -> Response:
        if access.is_api(request.url.path):
            return JSONResponse(
                {"error": "not signed in", "fix": "send Authorization: Bearer TOKEN or sign in"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return see_other("/login?next=" + quote(target, safe=""))

    @app.exception_handler(access.Forbidden)
    async def forbidden(request: Request, exc: access.Forbidden) -> Response:
        return _problem(request, 403, "forbidden", exc.reason)

    @app.exception_handler(VisionloopError)
    async def refused(request: Request, exc: VisionloopError) -> Response:
        return _problem(request, _status(exc), type(exc).__name__, exc.what, exc.fix)

    return app
