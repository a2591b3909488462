"""A lock in the metadata database: a named lease with an owner and an expiry.

It works wherever the workspace's database does (SQLite on a laptop, PostgreSQL for
agents on several machines). Taking it is a compare-and-set: an ``UPDATE`` that only
matches an expired lease or one the caller already owns, else an ``INSERT`` that the
primary key lets only one caller win. A holder renews it from a heartbeat thread; a
vanished holder's lease simply expires.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta
from types import TracebackType

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from visionloop.store import schema
from visionloop.workspace import Workspace, utcnow

T = schema.leases


def make_owner(role: str = "agent") -> str:
    """A name for this process that is unique across machines and restarts."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(ws: Workspace, name: str, owner: str, ttl_s: float) -> bool:
    """Take (or renew) the lease ``name`` for ``ttl_s`` seconds; False when someone else holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with ws.engine.begin() as conn:
        moved = conn.execute(
            update(T)
            .where(T.c.name == name, or_(T.c.expires_at < now, T.c.owner == owner))
            .values(owner=owner, expires_at=expires)
        ).rowcount
    if moved:
        return True
    try:
        with ws.engine.begin() as conn:
            conn.execute(insert(T).values(name=name, owner=owner, expires_at=expires))
    except IntegrityError:
        return False
    return True


def release(ws: Workspace, name: str, owner: str) -> None:
    """Give the lease back (only if ``owner`` still holds it)."""
    with ws.engine.begin() as conn:
        conn.execute(delete(T).where(T.c.name == name, T.c.owner == owner))


def holder(ws: Workspace, name: str) -> str | None:
    """Who holds the lease now (None when free or expired)."""
    from sqlalchemy import select

    with ws.engine.connect() as conn:
        row = conn.execute(select(T).where(T.c.name == name, T.c.expires_at >= utcnow())).first()
    return None if row is None else str(row.owner)


class Lease:
    """``with Lease(ws, name, owner, ttl) as lease:`` — held (and renewed every ttl/3 seconds) inside the
    block; ``lease.held`` turns False if a renewal ever finds it taken (then stop work at once)."""

    def __init__(self, ws: Workspace, name: str, owner: str, ttl_s: float) -> None:
        self.ws, self.name, self.owner, self.ttl_s = ws, name, owner, ttl_s
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.held = acquire(self.ws, self.name, self.owner, self.ttl_s)
        if self.held:
            self._thread = threading.Thread(target=self._beat, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not acquire(self.ws, self.name, self.owner, self.ttl_s):
                    self.held = False
                    return
            except Exception:  # a database hiccup: try again at the next beat; expiry is the safety net
                continue

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held:
            release(self.ws, self.name, self.owner)
        self.held = False
