"""Serving an alias: the bundle of the version an alias names, swapped when the alias moves.

A background thread reads the alias every ``poll_seconds``. When it names another version,
that version's published bundle is materialized into the workspace's bundle cache, verified
and warmed (:meth:`Holder.swap`), then swapped in. A version whose bundle cannot be loaded
(not exported, missing or corrupt blobs, a tampered cache) is never swapped in: the reason is
logged once, the old model keeps serving, and the version is tried again after a back-off
that doubles up to ``max_backoff_s``. A version that was exported but never published is
published here (:func:`publish_bundle` needs no torch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.errors import ModelNotFoundError, VisionloopError
from visionloop.export.bundle import MANIFEST, materialize_bundle, publish_bundle
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.serve.model import Holder, Loaded, load
from visionloop.workspace import Workspace

log = logging.getLogger("visionloop.serve")


def bundle_cache(ws: Workspace) -> Path:
    """Where served bundles are materialized: ``<workspace>/cache/bundles``."""
    return ws.root / "cache" / "bundles"


def prepare_bundle(ws: Workspace, version: int, cache: Path) -> Path:
    """The folder holding the verified bundle of ``version`` (published first when it was only exported)."""
    mv = get_model(ws, version)
    if MANIFEST not in mv.artifacts and "model.onnx" in mv.artifacts:
        publish_bundle(ws, version)
    return materialize_bundle(ws, version, cache / f"v{version}").path


def open_alias(ws: Workspace, alias: str, cache: Path | None = None) -> Loaded:
    """The verified, warmed bundle of the version ``alias`` names now."""
    version = resolve_alias(ws, alias)
    if version is None:
        raise ModelNotFoundError(
            f"alias {alias!r} names no model version, so there is nothing to serve",
            where=str(ws.root),
            fix=f"promote one with `visionloop model promote V --alias {alias}`, or serve a folder "
            "with `--bundle PATH`",
        )
    return load(prepare_bundle(ws, version, cache or bundle_cache(ws)))


@dataclass
class _Failure:
    version: int | None
    reason: str
    attempts: int
    next_try: float


class AliasFollower:
    """Keeps ``holder`` serving the version ``alias`` names; see the module docstring."""

    def __init__(
        self,
        ws: Workspace,
        alias: str,
        holder: Holder,
        *,
        cache: Path | None = None,
        poll_seconds: float = 1.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws = ws
        self.alias = alias
        self.holder = holder
        self.cache = cache or bundle_cache(ws)
        self.poll_seconds = poll_seconds
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._failure: _Failure | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alias_version: int | None = holder.current.version

    def status(self) -> dict[str, Any]:
        """The alias, the version it names (at the last poll) and why that one is not served, if so."""
        f = self._failure
        return {
            "alias": self.alias,
            "alias_version": self.alias_version,
            "pending_error": None if f is None else f.reason,
            "failed_attempts": 0 if f is None else f.attempts,
        }

    def _failed(self, version: int | None, reason: str) -> None:
        f = self._failure
        same = f is not None and f.version == version and f.reason == reason
        attempts = f.attempts + 1 if f is not None and f.version == version else 1
        delay = min(self.max_backoff_s, max(self.poll_seconds, 0.5) * 2**attempts)
        self._failure = _Failure(version, reason, attempts, self._clock() + delay)
        served = self.holder.current.version
        if not same:  # once per version and reason, never once per poll
            if version is None:
                log.warning("alias %r: %s; still serving v%s", self.alias, reason, served)
            else:
                log.warning(
                    "alias %r names v%s, which is not served (still serving v%s): %s; "
                    "retrying with back-off (next try in %.1f s)",
                    self.alias,
                    version,
                    served,
                    reason,
                    delay,
                )

    def poll(self) -> bool:
        """One look at the alias; True when another version was swapped in."""
        try:
            version = resolve_alias(self.ws, self.alias)
        except Exception as exc:  # the database is unreachable: keep serving what is loaded
            self._failed(None, f"cannot read the alias ({type(exc).__name__}: {exc})")
            return False
        self.alias_version = version
        served = self.holder.current.version
        if version is None:
            self._failed(None, "the alias names no model version")
            return False
        if version == served:
            self._failure = None
            return False
        f = self._failure
        if f is not None and f.version == version and self._clock() < f.next_try:
            return False
        try:
            loaded = self.holder.swap(prepare_bundle(self.ws, version, self.cache))
        except VisionloopError as exc:
            self._failed(version, exc.message)
            return False
        except Exception as exc:  # an unexpected fault must not stop the follower
            self._failed(version, f"{type(exc).__name__}: {exc}")
            return False
        self._failure = None
        log.info("alias %r moved: now serving v%s (was v%s)", self.alias, loaded.version, served)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"follow-{self.alias}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; waits for a swap in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
