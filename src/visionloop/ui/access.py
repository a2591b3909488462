"""Who may call what: the one table of route → minimum role, and the guard that enforces it.

Every route of the dashboard is a key of :data:`ACCESS` (a route missing from it is refused to
everyone, and a test checks that none is missing). The guard runs before every route: it finds the
caller (an ``Authorization: Bearer`` API token, else the session cookie), compares their role with
the route's minimum, and, for a cookie session, requires the session's CSRF token on every unsafe
method (form field ``csrf_token`` or header ``X-CSRF-Token``). Token calls need no CSRF token: a
browser never attaches one on its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from anyio import to_thread
from fastapi import Request

from visionloop.ui.auth import User, role_rank, session_user, user_for_token
from visionloop.workspace import Workspace

PUBLIC = "public"
SESSION_COOKIE = "visionloop_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: (method, route path) → the least role that may call it (``public``: anyone, signed in or not).
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/logout"): "viewer",
    ("GET", "/"): "viewer",
    ("GET", "/account"): "viewer",
    ("POST", "/account/tokens"): "viewer",
    ("GET", "/api/whoami"): "viewer",
    # datasets
    ("GET", "/datasets"): "viewer",
    ("GET", "/datasets/diff"): "viewer",
    ("GET", "/datasets/{ref}"): "viewer",
    ("GET", "/images"): "viewer",
    ("GET", "/images/{oid}/content"): "viewer",
    # models
    ("GET", "/models"): "viewer",
    ("GET", "/models/{version}"): "viewer",
    ("GET", "/models/{version}/artifacts/{name}"): "viewer",
    ("GET", "/aliases"): "viewer",
    ("POST", "/models/{version}/approve"): "approver",
    ("POST", "/models/{version}/reject"): "approver",
    ("POST", "/models/{version}/promote"): "approver",
    ("POST", "/aliases/{alias}/rollback"): "approver",
    # pipeline
    ("GET", "/pipeline"): "viewer",
    ("GET", "/pipeline/{run_id}"): "viewer",
    ("GET", "/api/pipeline/runs"): "viewer",
    ("POST", "/pipeline/runs"): "approver",
    ("POST", "/api/pipeline/runs"): "approver",
    # monitoring
    ("GET", "/monitor"): "viewer",
    # review
    ("GET", "/review/queue"): "viewer",
    ("GET", "/api/review/stats"): "viewer",
    ("GET", "/review"): "annotator",
    ("GET", "/api/review/next"): "annotator",
    ("GET", "/api/review/tasks/{task_id}"): "annotator",
    ("GET", "/api/review/tasks/{task_id}/image"): "annotator",
    ("POST", "/api/review/tasks/{task_id}/decision"): "annotator",
    # users
    ("GET", "/users"): "admin",
    ("POST", "/users"): "admin",
    ("POST", "/users/{user_id}"): "admin",
}


@dataclass(frozen=True)
class Identity:
    """Who is calling, and how: ``via`` is ``session`` (with its CSRF token) or ``token``."""

    user: User
    via: str
    csrf: str | None


class NotSignedIn(Exception):
    """No valid session or token: pages redirect to the sign-in page, API routes answer 401."""


class Forbidden(Exception):
    """Signed in, but not allowed: 403 with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def is_api(path: str) -> bool:
    return path.startswith("/api/")


def _identify(ws: Workspace, authorization: str, cookie: str | None) -> Identity | None:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        user = user_for_token(ws, token.strip()) if scheme.lower() == "bearer" else None
        return None if user is None else Identity(user, "token", None)
    if cookie:
        found = session_user(ws, cookie)
        if found is not None:
            return Identity(found[0], "session", found[1])
    return None


async def _csrf_given(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def guard(request: Request) -> None:
    """The dependency run before every route: authenticate, authorize, check CSRF."""
    route = request.scope.get("route")
    method = "GET" if request.method == "HEAD" else request.method
    need = ACCESS.get((method, getattr(route, "path", "")))
    if need is None:
        raise Forbidden("this route is not in the access table")
    if need == PUBLIC:
        return
    ws: Workspace = request.app.state.ws
    who = await to_thread.run_sync(
        _identify, ws, request.headers.get("authorization", ""), request.cookies.get(SESSION_COOKIE)
    )
    if who is None:
        raise NotSignedIn()
    if role_rank(who.user.role) < role_rank(need):
        raise Forbidden(f"this needs the {need} role; {who.user.name} is {who.user.role}")
    if method in UNSAFE and who.via == "session":
        given = await _csrf_given(request)
        if not given or not hmac.compare_digest(given.encode(), (who.csrf or "").encode()):
            raise Forbidden("missing or wrong CSRF token; reload the page and try again")
    request.state.identity = who


def identity(request: Request) -> Identity:
    """The caller the guard found (use only on routes that are not public)."""
    who: Identity = request.state.identity
    return who
