"""Signing in and out, the overview page and the caller's own account (API tokens)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from visionloop.ui.access import SESSION_COOKIE, Identity, identity
from visionloop.ui.auth import (
    SESSION_TTL,
    authenticate,
    create_session,
    create_token,
    end_session,
    list_tokens,
)
from visionloop.ui.web import local_path, page, see_other
from visionloop.workspace import Workspace

router = APIRouter()
LOGIN_COOKIE = "visionloop_login"  # double-submit token of the sign-in form (there is no session yet)


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _login_page(request: Request, next_url: str, error: str | None, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request, "login.html", status_code=status_code, login_token=token, next_url=next_url, error=error
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.app.state.secure_cookies,
        path="/login",
        max_age=3600,
    )
    return response


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness (no sign-in needed)."""
    return {"status": "ok"}


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in page."""
    return _login_page(request, local_path(next), None)


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the name and password; on success set the session cookie and go on to ``next``."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(request, local_path(next), "The sign-in form expired; please try again.", 403)
    ws = _ws(request)
    user = authenticate(ws, name, password)
    if user is None:
        return _login_page(request, local_path(next), "Wrong name or password.", 401)
    session_id, _csrf = create_session(ws, user)
    response = see_other(local_path(next))
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=request.app.state.secure_cookies,
        path="/",
        max_age=int(SESSION_TTL.total_seconds()),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session and forget the cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        end_session(_ws(request), session_id)
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/whoami")
def whoami(who: Annotated[Identity, Depends(identity)]) -> dict[str, Any]:
    """The caller's user record and how they authenticated."""
    return {**who.user.to_dict(), "via": who.via}


@router.get("/")
def overview(request: Request) -> Response:
    """Where the loop stands: newest dataset version, models and aliases, review queue, pipeline runs."""
    from visionloop.data.versions import list_versions
    from visionloop.pipeline.runs import list_runs
    from visionloop.registry.aliases import aliases_by_version
    from visionloop.registry.versions import list_models
    from visionloop.ui.routes.review import queue_summary

    ws = _ws(request)
    return page(
        request,
        "home.html",
        project=ws.settings.project.name,
        datasets=list_versions(ws)[:5],
        models=list_models(ws)[:5],
        aliases=aliases_by_version(ws),
        runs=list_runs(ws, 5),
        queue=queue_summary(ws),
    )


@router.get("/account")
def account(request: Request, who: Annotated[Identity, Depends(identity)]) -> Response:
    """The caller's account: role and API tokens."""
    return page(request, "account.html", tokens=list_tokens(_ws(request), who.user.name), new_token=None)


@router.post("/account/tokens")
def new_token(
    request: Request, who: Annotated[Identity, Depends(identity)], label: Annotated[str, Form()] = "api"
) -> Response:
    """Create an API token for the caller; it is shown on this page once and never again."""
    ws = _ws(request)
    token, _info = create_token(ws, who.user.name, label)
    return page(request, "account.html", tokens=list_tokens(ws, who.user.name), new_token=token)
