"""The server's live rollout: the router, the candidate model, per-route counts.

Serving a workspace, :meth:`RolloutControl.poll` (a thread, every ``poll_seconds``) re-reads the
recorded rollout and the ``candidate`` alias. The candidate's bundle is loaded only while the
rollout is not ``off`` and the alias names a version production does not serve, so an idle
server holds one model; a bundle that fails to load is never routed to (the reason is logged
once and retried with a doubling back-off, as for production in :mod:`visionloop.serve.follow`).

A change made over HTTP (:meth:`set`, :meth:`rollback`) is applied to the router before the
call returns, so it holds for the very next request, and is then recorded in the workspace.
Recorded rows are applied only when newer than the last one applied, and the change holds the
lock across its write, so a poll that read the row before it can never undo it.

Serving a folder (``--bundle``), the candidate is the ``--candidate-bundle`` loaded at start,
and the rollout lives in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionloop.errors import UsageError, VisionloopError
from visionloop.serve.model import Holder, Loaded, load
from visionloop.serve.rollout import OFF, Mode, Rollout, Route, Router

if TYPE_CHECKING:
    from visionloop.serve.rollout_state import RolloutRecord
    from visionloop.workspace import Workspace

log = logging.getLogger("visionloop.serve")
COUNTED = ("production", "canary", "shadow", "shadow_skipped", "shadow_failed")


@dataclass(frozen=True)
class Choice:
    """The model that answers one request, its route, and the candidate a shadow copy goes to."""

    answer: Loaded
    route: Route
    shadow: Loaded | None


class RolloutControl:
    """See the module docstring."""

    def __init__(
        self,
        production: Holder,
        *,
        candidate: Loaded | None = None,
        rollout: Rollout = OFF,
        ws: Workspace | None = None,
        cache: Path | None = None,
        poll_seconds: float = 1.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ws is None and rollout.mode != "off" and candidate is None:
            raise UsageError(f"a {rollout.mode} needs a candidate", fix="pass --candidate-bundle PATH")
        self.production = production
        self.router = Router(rollout)
        self.ws = ws
        self._candidate = candidate
        self._cache = cache
        self.poll_seconds = poll_seconds
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._lock = threading.Lock()  # orders recorded rollouts against changes made over HTTP
        self._poll_lock = threading.Lock()  # one poll at a time (the thread, or a change over HTTP)
        self._count_lock = threading.Lock()
        self._applied_id = 0  # the newest rollout_events row applied (ids start at 1)
        self._recorded: RolloutRecord | None = None
        self.candidate_alias_version: int | None = None
        self._failure: tuple[int | None, str, int, float] | None = None  # version, reason, tries, next
        self._counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def candidate(self) -> Loaded | None:
        return self._candidate

    def choose(self, device_id: str | None) -> Choice:
        """Route one request. A candidate that production serves too is no candidate."""
        production = self.production.current
        candidate = self._candidate
        if candidate is not None and candidate.version == production.version:
            candidate = None
        route = self.router.route(device_id, None if candidate is None else candidate.version)
        if route == "canary" and candidate is not None:
            return Choice(candidate, route, None)
        return Choice(production, route, candidate if route == "shadow" else None)

    def count(self, key: str) -> None:
        with self._count_lock:
            self._counts[key] += 1

    def summary(self) -> dict[str, Any]:
        """The rollout in force and the versions it splits between (for /readyz and /v1/model)."""
        r = self.router.rollout
        candidate = self._candidate
        return {
            "mode": r.mode,
            "percent": r.percent,
            "production_version": self.production.current.version,
            "candidate_version": None if candidate is None else candidate.version,
        }

    def status(self) -> dict[str, Any]:
        """The summary, the workspace's view (alias, recorded row, a pending load error), counts."""
        with self._count_lock:
            counts = {k: self._counts[k] for k in COUNTED}
        f = self._failure
        return self.summary() | {
            "candidate_alias_version": self.candidate_alias_version,
            "pending_error": None if f is None else f[1],
            "recorded": None if self._recorded is None else self._recorded.to_dict(),
            "counts": counts,
        }

    def set(self, mode: Mode, percent: float, *, actor: str | None, reason: str | None) -> dict[str, Any]:
        """Change the rollout now; with a workspace it is recorded and the candidate loaded first."""
        rollout = Rollout(mode, percent)
        if self.ws is None:
            if rollout.mode != "off" and self._candidate is None:
                raise UsageError(
                    f"a {rollout.mode} needs a candidate, and this server has none",
                    fix="start it with --candidate-bundle PATH",
                )
            self.router.set(rollout)
            return self.status()
        from visionloop.serve.rollout_state import set_rollout

        with self._lock:
            record = set_rollout(self.ws, rollout.mode, rollout.percent, actor=actor, reason=reason)
            self._apply(record)
        self.poll()  # load (or unload) the candidate before answering
        return self.status()

    def rollback(self, *, actor: str | None, reason: str | None) -> dict[str, Any]:
        """Production answers everything from the next request on; then the change is recorded
        (when recording fails, the rollback still holds here and the reason is returned)."""
        with self._lock:
            self.router.set(OFF)
            error = None
            if self.ws is not None:
                from visionloop.serve.rollout_state import rollback

                try:
                    self._apply(rollback(self.ws, actor=actor, reason=reason))
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    log.exception("rolled back, but the rollback could not be recorded")
        log.info("rollout rolled back by %s: production answers every request", actor or "someone")
        return self.status() | {"record_error": error}

    def _apply(self, record: RolloutRecord) -> None:
        """Apply a recorded row unless a newer one was applied already (the caller holds the lock)."""
        if record.id is None or record.id <= self._applied_id:
            return
        before = self.router.rollout
        self.router.set(record.rollout)
        self._applied_id, self._recorded = record.id, record
        if record.rollout != before:
            log.info(
                "rollout is now %s %g%% (was %s %g%%; by %s)",
                record.mode,
                record.percent,
                before.mode,
                before.percent,
                record.actor or "someone",
            )

    def _failed(self, version: int | None, reason: str) -> None:
        f = self._failure
        attempts = f[2] + 1 if f is not None and f[0] == version else 1
        delay = min(self.max_backoff_s, max(self.poll_seconds, 0.5) * 2**attempts)
        if f is None or (f[0], f[1]) != (version, reason):  # once per version and reason
            log.warning("candidate v%s is not loaded: %s; retrying with back-off", version, reason)
        self._failure = (version, reason, attempts, self._clock() + delay)

    def poll(self) -> None:
        """One look at the workspace: apply a newer recorded rollout, load or unload the candidate."""
        if self.ws is None:
            return
        from visionloop.registry.aliases import resolve_alias
        from visionloop.serve.follow import bundle_cache, prepare_bundle
        from visionloop.serve.rollout_state import CANDIDATE, current_rollout

        with self._poll_lock:
            try:
                record = current_rollout(self.ws)
                self.candidate_alias_version = resolve_alias(self.ws, CANDIDATE)
            except Exception as exc:  # the database is unreachable: keep the rollout in force
                self._failed(None, f"cannot read the rollout ({type(exc).__name__}: {exc})")
                return
            with self._lock:
                self._apply(record)
            want = self.candidate_alias_version if self.router.rollout.mode != "off" else None
            if want == self.production.current.version:
                want = None
            current = self._candidate
            if want is None or (current is not None and current.version == want):
                if want is None and current is not None:
                    self._candidate = None  # free its memory: nothing routes to it
                    log.info("candidate v%s unloaded", current.version)
                self._failure = None
                return
            f = self._failure
            if f is not None and f[0] == want and self._clock() < f[3]:
                return
            try:
                loaded = load(prepare_bundle(self.ws, want, self._cache or bundle_cache(self.ws)))
            except VisionloopError as exc:
                self._failed(want, exc.message)
                return
            except Exception as exc:  # an unexpected fault must not stop the poll thread
                self._failed(want, f"{type(exc).__name__}: {exc}")
                return
            self._candidate, self._failure = loaded, None
            log.info("candidate v%s loaded (production serves v%s)", want, self.production.current.version)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def start(self) -> None:
        """With a workspace: one poll now (the first request already sees the recorded rollout), then
        one every ``poll_seconds`` in a daemon thread until :meth:`stop`."""
        if self.ws is None or self._thread is not None:
            return
        self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="follow-rollout", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
