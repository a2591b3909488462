"""``visionloop ui`` (the dashboard) and ``visionloop user add|list|token``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from visionloop.cli import JsonOpt, _table, _ws, app, emit, err, out, user_app
from visionloop.errors import UsageError


def _import_ui() -> None:
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the dashboard needs the `ui` extra ({exc.name} is not installed)",
            fix="pip install 'visionloop[ui]'",
        ) from None


@app.command("ui")
def ui_cmd(
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (when served behind HTTPS).")
    ] = False,
) -> None:
    """The dashboard: review images, browse datasets, models and pipeline runs; sign in as a user."""
    _import_ui()
    import uvicorn

    from visionloop.ui.app import create_app
    from visionloop.ui.auth import list_users

    ws = _ws()
    if not list_users(ws):
        err.print("no users yet: add one with `visionloop user add NAME --role admin`", highlight=False)
    err.print(f"visionloop dashboard on http://{host}:{port} (workspace {ws.root})", highlight=False)
    uvicorn.run(create_app(ws, secure_cookies=secure_cookies), host=host, port=port, log_level="warning")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = typer.prompt("Password", hide_input=True)
    second: str = typer.prompt("Repeat it", hide_input=True)
    if first != second:
        raise UsageError("the two passwords differ", fix="type the same password twice")
    return first


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name (what decisions record).")],
    role: Annotated[str, typer.Option(help="viewer, annotator, approver or admin.")] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a dashboard user with a role; the password is asked for (hidden) and stored hashed."""
    from visionloop.ui.auth import check_role, create_user

    check_role(role)
    ws = _ws()
    user = create_user(ws, name, role, _read_password(password_stdin))
    emit(
        user.to_dict(),
        as_json,
        lambda: out.print(f"Added {escape(user.name)} ({user.role})", highlight=False),
    )


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """Dashboard users: name, role, state."""
    from visionloop.ui.auth import list_users

    users = list_users(_ws())
    rows = [
        [escape(u.name), u.role, "disabled" if u.disabled else "active", u.created_at.isoformat()[:19]]
        for u in users
    ]
    emit(
        [u.to_dict() for u in users],
        as_json,
        lambda: out.print(_table("users", ["name", "role", "state", "created"], rows)),
    )


@user_app.command("token")
def user_token(
    name: Annotated[str, typer.Argument(help="Whose token.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    as_json: JsonOpt = False,
) -> None:
    """Create an API token for a user and print it once (only its hash is stored)."""
    from visionloop.ui.auth import create_token

    token, info = create_token(_ws(), name, label)

    def render() -> None:
        err.print(
            f"API token {escape(info.label)!r} for {escape(info.user)} — shown once, keep it safe; "
            "send it as `Authorization: Bearer TOKEN`",
            highlight=False,
        )
        out.print(token, highlight=False, markup=False)

    emit({**info.to_dict(), "token": token}, as_json, render)
