"""Rendering helpers shared by the pages: the Jinja environment (autoescape on), a page
response with the signed-in user and CSRF token, and the redirect after a form."""

from __future__ import annotations

import zlib
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from visionloop.ui.access import ACCESS, Identity
from visionloop.ui.auth import role_rank

NAV = (
    ("/", "Overview"),
    ("/review", "Review"),
    ("/datasets", "Datasets"),
    ("/images", "Images"),
    ("/models", "Models"),
    ("/pipeline", "Pipeline"),
    ("/monitor", "Monitoring"),
)


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text[:19].replace("T", " ")


def class_color(name: str) -> str:
    """A stable colour for a class name (the same on every page)."""
    return f"hsl({zlib.crc32(name.encode()) % 360}, 80%, 45%)"


def _total_seconds(steps: list[Any]) -> str:
    done = [s.seconds for s in steps if s.seconds is not None]
    return f"{sum(done):.1f}" if done else "—"


@cache
def environment() -> Environment:
    """The templates shipped in the package; every ``{{ value }}`` is HTML-escaped."""
    env = Environment(
        loader=PackageLoader("visionloop.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    env.filters["when"] = _when
    env.filters["short"] = lambda oid: str(oid or "")[:12]
    env.globals["color"] = class_color
    env.filters["total_seconds"] = _total_seconds
    env.filters["q"] = lambda text: quote(str(text), safe="")
    return env


def can(who: Identity | None, method: str, path: str) -> bool:
    """Whether ``who`` may call the route ``method path`` (to show only the actions they may take)."""
    need = ACCESS.get((method, path))
    if who is None or need is None:
        return need == "public"
    return need == "public" or role_rank(who.user.role) >= role_rank(need)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the caller, their CSRF token and the navigation."""
    who: Identity | None = getattr(request.state, "identity", None)
    html = (
        environment()
        .get_template(template)
        .render(
            me=who.user if who else None,
            csrf=who.csrf if who and who.csrf else "",
            nav=[(href, label) for href, label in NAV if can(who, "GET", href)],
            path=request.url.path,
            can=lambda method, path: can(who, method, path),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    """The answer to a form post: go (GET) to ``url``."""
    return RedirectResponse(url, status_code=303)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another host), else ``default``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target
