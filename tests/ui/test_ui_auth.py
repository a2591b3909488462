"""Sign-in, sessions, CSRF, API tokens, hashed secrets, and the approver's decisions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from pipeline.conftest import tune
from ui.conftest import PASSWORD, Seed, client_for, seed_workspace, sign_in
from visionloop.errors import UsageError
from visionloop.registry.aliases import alias_history
from visionloop.registry.versions import get_model
from visionloop.ui.access import SESSION_COOKIE
from visionloop.ui.auth import (
    authenticate,
    check_password,
    create_session,
    create_token,
    create_user,
    hash_password,
    update_user,
)
from visionloop.workspace import init_workspace, open_workspace


def test_password_hash_is_salted_scrypt_and_checked() -> None:
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$16384$8$1$") and "s3cret" not in a
    assert check_password("s3cret-pass", a) and not check_password("s3cret-pasS", a)
    assert not check_password("s3cret-pass", "garbage")


def test_sign_in_sets_a_safe_cookie_and_stores_only_hashes(seeded: Seed) -> None:
    client = client_for(seeded, None)
    response = sign_in(client, "viewer-user", next_url="/models")
    assert response.status_code == 303 and response.headers["location"] == "/models"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    session_id = client.cookies[SESSION_COOKIE]
    assert client.get("/models").status_code == 200
    token, _ = create_token(seeded.ws, "viewer-user", "hash check")
    with seeded.ws.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("users", "api_tokens", "web_sessions")
            for row in conn.execute(text(f"select * from {table}"))
        )
    assert PASSWORD not in dump and token not in dump and session_id not in dump
    assert "scrypt$" in dump


def test_wrong_password_unknown_user_and_stale_form_are_refused(seeded: Seed) -> None:
    client = client_for(seeded, None)
    assert sign_in(client, "viewer-user", "wrong password").status_code == 401
    assert sign_in(client, "nobody-here").status_code == 401
    assert SESSION_COOKIE not in client.cookies
    stale = client.post("/login", data={"name": "viewer-user", "password": PASSWORD, "csrf_token": "forged"})
    assert stale.status_code == 403 and SESSION_COOKIE not in client.cookies


def test_next_never_leaves_the_site(seeded: Seed) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        response = sign_in(client_for(seeded, None), "viewer-user", next_url=target)
        assert response.headers["location"] == "/"


def test_csrf_missing_or_wrong_is_403_and_right_is_accepted(seeded: Seed) -> None:
    client = client_for(seeded, seeded.users["viewer"])
    assert client.post("/account/tokens", data={"label": "x"}).status_code == 403
    assert client.post("/account/tokens", data={"label": "x", "csrf_token": "wrong"}).status_code == 403
    assert client.post("/account/tokens", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    decision = f"/api/review/tasks/{seeded.tasks[1]}/decision"
    as_annotator = client_for(seeded, seeded.users["annotator"])
    assert as_annotator.post(decision, json={"decision": "skip"}).status_code == 403
    other = client_for(seeded, seeded.users["admin"]).csrf  # type: ignore[attr-defined]
    assert client.post("/account/tokens", data={"label": "x", "csrf_token": other}).status_code == 403
    ok = client.post("/account/tokens", data={"label": "x", "csrf_token": client.csrf})  # type: ignore[attr-defined]
    assert ok.status_code == 200 and "vl_" in ok.text


def test_token_auth_works_without_csrf_and_bad_tokens_are_401(seeded: Seed) -> None:
    token, _ = create_token(seeded.ws, "annotator-user", "script")
    client = client_for(seeded, None)
    who = client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 200 and who.json()["name"] == "annotator-user" and who.json()["via"] == "token"
    task = seeded.tasks[0]
    decided = client.post(
        f"/api/review/tasks/{task}/decision",
        json={"decision": "skip"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert decided.status_code == 200 and decided.json()["task"]["decided_by"] == "annotator-user"
    assert client.get("/api/whoami", headers={"Authorization": "Bearer vl_nope"}).status_code == 401
    assert client.get("/api/whoami", headers={"Authorization": f"Basic {token}"}).status_code == 401
    promote = client.post(
        f"/models/{seeded.production}/promote", headers={"Authorization": f"Bearer {token}"}
    )
    assert promote.status_code == 403


def test_expired_sessions_and_disabled_users_are_signed_out(seeded: Seed) -> None:
    user = create_user(seeded.ws, "short-lived", "viewer", PASSWORD)
    session_id, _ = create_session(seeded.ws, user, ttl=timedelta(seconds=-1))
    client = client_for(seeded, None)
    client.cookies.set(SESSION_COOKIE, session_id)
    assert client.get("/").status_code == 303
    token, _ = create_token(seeded.ws, "short-lived")
    live = client_for(seeded, user)
    assert live.get("/").status_code == 200
    update_user(seeded.ws, "short-lived", disabled=True)
    assert live.get("/").status_code == 303
    assert client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert authenticate(seeded.ws, "short-lived", PASSWORD) is None


def test_logout_ends_the_session(seeded: Seed) -> None:
    client = client_for(seeded, seeded.users["viewer"])
    assert client.post("/logout", data={"csrf_token": client.csrf}).status_code == 303  # type: ignore[attr-defined]
    assert client.get("/").status_code == 303


def test_bad_user_input_is_refused_with_a_reason(seeded: Seed) -> None:
    with pytest.raises(UsageError, match="unknown role"):
        create_user(seeded.ws, "x-user", "superuser", PASSWORD)
    with pytest.raises(UsageError, match="shorter than 8"):
        create_user(seeded.ws, "x-user", "viewer", "short")
    with pytest.raises(UsageError, match="exists already"):
        create_user(seeded.ws, "viewer-user", "viewer", PASSWORD)
    admin = client_for(seeded, seeded.users["admin"])
    page = admin.post(
        "/users",
        data={"name": "y", "role": "root", "password": PASSWORD, "csrf_token": admin.csrf},  # type: ignore[attr-defined]
    )
    assert page.status_code == 400 and "unknown role" in page.text


def test_annotator_cannot_approve_or_promote(seeded: Seed) -> None:
    client = client_for(seeded, seeded.users["annotator"])
    csrf = client.csrf  # type: ignore[attr-defined]
    for action in ("approve", "reject", "promote"):
        url = f"/models/{seeded.awaiting}/{action}"
        response = client.post(url, data={"reason": "mine", "csrf_token": csrf})
        assert response.status_code == 403 and "approver" in response.text
    assert get_model(seeded.ws, seeded.awaiting).status == "awaiting_approval"


def test_approver_approves_and_promotes_as_themselves(tmp_path: Path, synth_day: Path) -> None:
    ws = init_workspace(tmp_path / "p")
    seed = seed_workspace(ws, synth_day, tmp_path)
    own = client_for(seed, seed.users["trainer"])
    refused = own.post(
        f"/models/{seed.awaiting}/approve",
        data={"reason": "mine", "csrf_token": own.csrf},  # type: ignore[attr-defined]
    )
    assert refused.status_code == 409
    assert "trainer trained model version" in refused.text and "cannot approve it" in refused.text
    assert get_model(ws, seed.awaiting).status == "awaiting_approval"

    other = client_for(seed, seed.users["approver"])
    csrf = other.csrf  # type: ignore[attr-defined]
    ok = other.post(f"/models/{seed.awaiting}/approve", data={"reason": "checked", "csrf_token": csrf})
    assert ok.status_code == 303
    mv = get_model(ws, seed.awaiting)
    assert mv.status == "approved" and mv.decided_by == "approver-user" and mv.decision_reason == "checked"
    moved = other.post(
        f"/models/{seed.awaiting}/promote",
        data={"alias": "production", "reason": "better", "csrf_token": csrf},
    )
    assert moved.status_code == 303
    last = alias_history(ws, "production")[-1]
    assert (last.to_version, last.actor, last.reason) == (seed.awaiting, "approver-user", "better")
    back = other.post("/aliases/production/rollback", data={"reason": "oops", "csrf_token": csrf})
    assert back.status_code == 303 and alias_history(ws, "production")[-1].to_version == seed.production
    ws.close()


def test_self_approval_when_configured(tmp_path: Path, synth_day: Path) -> None:
    first = init_workspace(tmp_path / "p")
    root = first.root
    first.close()
    tune(root, **{"allow_self_approval = false": "allow_self_approval = true"})
    ws = open_workspace(root)
    seed = seed_workspace(ws, synth_day, tmp_path)
    own = client_for(seed, seed.users["trainer"])
    ok = own.post(f"/models/{seed.awaiting}/approve", data={"reason": "mine", "csrf_token": own.csrf})  # type: ignore[attr-defined]
    assert ok.status_code == 303 and get_model(ws, seed.awaiting).status == "approved"
    ws.close()


def test_pipeline_start_records_the_actor_and_refuses_while_busy(seeded: Seed) -> None:
    client = client_for(seeded, seeded.users["approver"])
    response = client.post("/pipeline/runs", data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
    assert response.status_code == 303 and seeded.started[-1] == "approver-user"
    token, _ = create_token(seeded.ws, "approver-user")
    api = client_for(seeded, None).post("/api/pipeline/runs", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 202 and api.json()["actor"] == "approver-user"


def test_default_pipeline_starter_refuses_while_the_lock_is_held(seeded: Seed) -> None:
    from visionloop.errors import PipelineBusyError
    from visionloop.pipeline.lease import acquire, release
    from visionloop.ui.pipeline_start import start_in_thread

    assert acquire(seeded.ws, "pipeline", "someone-else", 60)
    try:
        with pytest.raises(PipelineBusyError, match="someone-else"):
            start_in_thread(seeded.ws, "approver-user")
    finally:
        release(seeded.ws, "pipeline", "someone-else")
