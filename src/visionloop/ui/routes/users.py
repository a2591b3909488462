"""User management (admin): add users, change roles, disable and enable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from visionloop.errors import UsageError
from visionloop.ui.auth import ROLES, create_user, list_users, update_user
from visionloop.ui.web import page, see_other
from visionloop.workspace import Workspace

router = APIRouter()


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.get("/users")
def users(request: Request) -> Response:
    """Every user with their role, and the forms to add or change one."""
    return page(request, "users.html", users=list_users(_ws(request)), roles=ROLES)


@router.post("/users")
def add_user(
    request: Request,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    """Add a user (the password is stored hashed)."""
    create_user(_ws(request), name, role, password)
    return see_other("/users")


@router.post("/users/{user_id}")
def change_user(
    request: Request,
    user_id: int,
    role: Annotated[str, Form()] = "",
    disabled: Annotated[str, Form()] = "",
) -> Response:
    """Change a user's role, or disable (``disabled=1``) or enable (``disabled=0``) them."""
    ws = _ws(request)
    found = [u for u in list_users(ws) if u.id == user_id]
    if not found:
        raise UsageError(f"no user with id {user_id}", fix="pick a user from the list")
    update_user(ws, found[0].name, role=role or None, disabled=None if disabled == "" else disabled == "1")
    return see_other("/users")
