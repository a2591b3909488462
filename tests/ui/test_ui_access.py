"""Every route × every role: allowed → 2xx/3xx, not allowed → 403, signed out → sign-in redirect
(pages) or 401 (API); and the access table covers exactly the app's routes."""

from __future__ import annotations

import pytest

from ui.conftest import PASSWORD, Seed, client_for
from visionloop.ui.access import ACCESS, PUBLIC, UNSAFE
from visionloop.ui.auth import ROLES, role_rank
from visionloop.ui.routes import datasets, models, monitor, pipeline, review, session, users

ROUTES = sorted(ACCESS)
WHO = (None, *ROLES)


def _url(path: str, seed: Seed) -> str:
    values = {
        "{ref}": seed.dataset[:12],
        "{oid}": seed.image_oid,
        "{version}": str(seed.production),
        "{name}": "pr_curves.png",
        "{alias}": "production",
        "{run_id}": str(seed.pipeline_run),
        "{task_id}": str(seed.tasks[-1]),
        "{user_id}": str(seed.users["viewer"].id),
    }
    for key, value in values.items():
        path = path.replace(key, value)
    return path


FORMS = {
    "/login": {"name": "viewer-user", "password": PASSWORD, "csrf_token": "matrix"},
    "/account/tokens": {"label": "matrix"},
    "/models/{version}/approve": {"reason": "looks good"},
    "/models/{version}/reject": {"reason": "no"},
    "/models/{version}/promote": {"alias": "matrix", "reason": "try"},
    "/aliases/{alias}/rollback": {"reason": "back"},
    "/users": {"name": "made-in-matrix", "role": "viewer", "password": PASSWORD},
    "/users/{user_id}": {"role": "viewer"},
}
JSON = {"/api/review/tasks/{task_id}/decision": {"decision": "skip", "expected_status": "skipped"}}


def test_access_table_covers_exactly_the_routes() -> None:
    routed = {
        (method, route.path)
        for module in (session, datasets, models, monitor, pipeline, review, users)
        for route in module.router.routes
        for method in getattr(route, "methods", ())
    }
    assert routed == set(ACCESS)
    assert set(ACCESS.values()) <= {PUBLIC, *ROLES}


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "signed-out")
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_route_by_role(route: tuple[str, str], who: str | None, seeded: Seed) -> None:
    method, path = route
    need = ACCESS[route]
    client = client_for(seeded, seeded.users[who] if who else None)
    client.cookies.set("visionloop_login", "matrix")  # the sign-in form's own token
    url = _url(path, seeded)
    kwargs: dict[str, object] = {}
    if method in UNSAFE:
        kwargs["headers"] = {"X-CSRF-Token": client.csrf}  # type: ignore[attr-defined]
        if path in FORMS:
            kwargs["data"] = FORMS[path]
        if path in JSON:
            kwargs["json"] = JSON[path]
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    status = response.status_code
    if need == PUBLIC:
        assert status < 500 and status not in (401, 403), (status, response.text[:300])
    elif who is None:
        if path.startswith("/api/"):
            assert status == 401 and response.headers["www-authenticate"] == "Bearer"
        else:
            assert status == 303 and response.headers["location"].startswith("/login?next=")
    elif role_rank(who) < role_rank(need):
        assert status == 403, (status, response.text[:300])
    elif method == "GET":
        assert status == 200, (status, response.text[:300])
    else:
        # allowed: the request reaches the route (it may still refuse the decision itself, e.g. 409)
        assert status < 500 and status not in (401, 403), (status, response.text[:300])
