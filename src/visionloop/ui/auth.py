"""Users, passwords, API tokens and web sessions of the dashboard.

Passwords are hashed with scrypt and a per-user random salt and compared in constant
time. API tokens and session ids are random; only their sha256 is stored, so a copy of
the database lets nobody sign in. A token is shown once, when it is created.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.errors import UsageError
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

#: Roles from least to most trusted; each may do everything the ones before it may.
ROLES = ("viewer", "annotator", "approver", "admin")
MIN_PASSWORD = 8
SESSION_TTL = timedelta(hours=12)
TOKEN_PREFIX = "vl_"
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
# scrypt cost: 2**14 × 8 × 128 bytes = 16 MiB and ~50 ms per check (the interactive setting of the
# scrypt paper); stored with each hash so it can be raised later without breaking old ones.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
U, T, S = schema.users, schema.api_tokens, schema.web_sessions


@dataclass(frozen=True)
class User:
    """One ``users`` row, without its password hash."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


def role_rank(role: str) -> int:
    """Position of ``role`` in :data:`ROLES` (higher may do more)."""
    return ROLES.index(role)


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=2**26)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison of the hashes)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=2**26,
        )
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(got, want)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))


def _user(row: Any) -> User:
    return User(row.id, row.name, row.role, bool(row.disabled), aware(row.created_at))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}", fix=f"use one of {', '.join(ROLES)}")
    return role


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name != name.strip():
        raise UsageError(
            f"invalid user name {name!r}",
            fix="use 1-200 printable characters without leading or trailing spaces",
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            f"the password is shorter than {MIN_PASSWORD} characters", fix="choose a longer password"
        )


def create_user(ws: Workspace, name: str, role: str, password: str) -> User:
    """Add a user with ``role`` (see :data:`ROLES`); the password is stored hashed."""
    _check_name(name)
    check_role(role)
    _check_password(password)
    try:
        with ws.engine.begin() as conn:
            conn.execute(
                insert(U).values(
                    name=name,
                    role=role,
                    password_hash=hash_password(password),
                    disabled=0,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        raise UsageError(
            f"a user named {name!r} exists already", fix="choose another name, or change that user's role"
        ) from None
    return get_user(ws, name)


def get_user(ws: Workspace, name: str) -> User:
    """The user called ``name``."""
    with ws.engine.connect() as conn:
        row = conn.execute(select(U).where(U.c.name == name)).first()
    if row is None:
        raise UsageError(f"no user named {name!r}", fix="list them with `visionloop user list`")
    return _user(row)


def list_users(ws: Workspace) -> list[User]:
    """Every user, by name."""
    with ws.engine.connect() as conn:
        return [_user(r) for r in conn.execute(select(U).order_by(U.c.name))]


def update_user(ws: Workspace, name: str, *, role: str | None = None, disabled: bool | None = None) -> User:
    """Change a user's role or disable / enable them (a disabled user's sessions end)."""
    user = get_user(ws, name)
    values: dict[str, Any] = {}
    if role is not None:
        values["role"] = check_role(role)
    if disabled is not None:
        values["disabled"] = int(disabled)
    if values:
        with ws.engine.begin() as conn:
            conn.execute(update(U).where(U.c.id == user.id).values(**values))
            if disabled:
                conn.execute(delete(S).where(S.c.user_id == user.id))
    return get_user(ws, name)


def authenticate(ws: Workspace, name: str, password: str) -> User | None:
    """The user when ``name`` and ``password`` match an enabled user, else None."""
    with ws.engine.connect() as conn:
        row = conn.execute(select(U).where(U.c.name == name)).first()
    if row is None:
        check_password(password, _dummy_hash())  # as slow as a real check: names do not leak by timing
        return None
    if not check_password(password, row.password_hash) or row.disabled:
        return None
    return _user(row)


@dataclass(frozen=True)
class TokenInfo:
    """An API token's record (never the token itself)."""

    id: int
    user: str
    label: str
    created_at: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def create_token(ws: Workspace, name: str, label: str = "api") -> tuple[str, TokenInfo]:
    """A new API token for user ``name``: ``(token, record)``; the token is not stored, only its hash."""
    user = get_user(ws, name)
    label = label.strip() or "api"
    if not _NAME.match(label):
        raise UsageError(f"invalid token label {label!r}", fix="use 1-200 printable characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(T).values(user_id=user.id, token_hash=sha256_text(token), label=label, created_at=now)
        )
        key = res.inserted_primary_key
    assert key is not None
    return token, TokenInfo(int(key[0]), user.name, label, now, None)


def list_tokens(ws: Workspace, name: str) -> list[TokenInfo]:
    """The API tokens of user ``name`` (records only)."""
    user = get_user(ws, name)
    with ws.engine.connect() as conn:
        rows = conn.execute(select(T).where(T.c.user_id == user.id).order_by(T.c.id)).all()
    return [
        TokenInfo(
            r.id, user.name, r.label, aware(r.created_at), aware(r.last_used_at) if r.last_used_at else None
        )
        for r in rows
    ]


def user_for_token(ws: Workspace, token: str) -> User | None:
    """The enabled user an API token belongs to (and note its use), else None."""
    digest = sha256_text(token)
    with ws.engine.begin() as conn:
        row = conn.execute(
            select(U).join(T, T.c.user_id == U.c.id).where(T.c.token_hash == digest, U.c.disabled == 0)
        ).first()
        if row is None:
            return None
        conn.execute(update(T).where(T.c.token_hash == digest).values(last_used_at=utcnow()))
    return _user(row)


def create_session(ws: Workspace, user: User, ttl: timedelta = SESSION_TTL) -> tuple[str, str]:
    """A new web session for ``user``: ``(session id for the cookie, CSRF token)``."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    with ws.engine.begin() as conn:
        conn.execute(delete(S).where(S.c.expires_at < now))  # expired sessions are of no use to anyone
        conn.execute(
            insert(S).values(
                id_hash=sha256_text(session_id),
                user_id=user.id,
                csrf_token=csrf,
                expires_at=now + ttl,
                created_at=now,
            )
        )
    return session_id, csrf


def session_user(ws: Workspace, session_id: str) -> tuple[User, str] | None:
    """``(user, CSRF token)`` of a live session of an enabled user, else None."""
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(U, S.c.csrf_token, S.c.expires_at)
            .join(S, S.c.user_id == U.c.id)
            .where(S.c.id_hash == sha256_text(session_id), U.c.disabled == 0)
        ).first()
    if row is None or aware(row.expires_at) <= utcnow():
        return None
    return _user(row), str(row.csrf_token)


def end_session(ws: Workspace, session_id: str) -> None:
    """Forget a web session (sign out)."""
    with ws.engine.begin() as conn:
        conn.execute(delete(S).where(S.c.id_hash == sha256_text(session_id)))
