"""Which model answers a request while a candidate is rolled out (pure: no I/O, no models).

A :class:`Rollout` is a mode and a percent. ``off``: production answers everything. ``canary``:
the candidate answers ``percent`` of requests. ``shadow``: production answers everything and
``percent`` of requests are also copied to the candidate, whose answers are only logged.

:class:`Router` picks one request's route. A request with a device id lands by a stable hash of
the id (salted with the candidate's version), so a device sees one model for as long as the
candidate stays the same and raising the percent only adds devices. A request without one takes
the next point of the golden-ratio sequence ``frac(n·φ)``: its points spread so evenly that any
N consecutive requests send the candidate within a few requests of its share (at 20%, every
window of 1,000 requests holds 199 to 201 candidate answers; of 10,000, 1,997 to 2,002), where a
coin toss per request would stray by ±13 requests in 1,000 and past ±4% now and then.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal, get_args

from visionloop.distribute.rollout import stable_bucket
from visionloop.errors import UsageError

Mode = Literal["off", "canary", "shadow"]
Route = Literal["production", "canary", "shadow"]
"""How a request is answered: by production, by the candidate (canary), or by production with a
copy sent to the candidate (shadow)."""
MODES: tuple[Mode, ...] = get_args(Mode)
_GOLDEN = (math.sqrt(5) - 1) / 2  # frac(φ): the most evenly spreading step on the unit circle
_SALT = "serve-rollout"  # keeps these buckets independent of the release channels' ones


def parse_mode(value: object) -> Mode:
    """``value`` as a rollout mode, or a :class:`UsageError` naming the modes."""
    for mode in MODES:
        if value == mode:
            return mode
    raise UsageError(f"unknown rollout mode {value!r}", fix=f"use one of {', '.join(MODES)}")


@dataclass(frozen=True)
class Rollout:
    """A traffic split between production and the candidate; checked when made."""

    mode: Mode = "off"
    percent: float = 0.0

    def __post_init__(self) -> None:
        parse_mode(self.mode)
        if not (isinstance(self.percent, int | float) and 0.0 <= self.percent <= 100.0):
            raise UsageError(
                f"the rollout percent must be within 0..100, not {self.percent}",
                fix="pass e.g. --percent 20",
            )

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "percent": self.percent}


OFF = Rollout()


class Router:
    """Chooses each request's route under the current :class:`Rollout`; safe across threads.

    ``set`` takes effect for the very next ``route`` call: a rollback is one assignment."""

    def __init__(self, rollout: Rollout = OFF) -> None:
        self._rollout = rollout
        self._lock = threading.Lock()
        self._n = 0

    @property
    def rollout(self) -> Rollout:
        return self._rollout

    def set(self, rollout: Rollout) -> None:
        self._rollout = rollout

    def _next_point(self) -> float:
        with self._lock:
            self._n += 1
            n = self._n
        return (n * _GOLDEN) % 1.0 * 100.0

    def route(self, device_id: str | None, candidate_version: int | None) -> Route:
        """The route of one request; ``candidate_version`` None means no candidate is loaded, so
        production answers whatever the rollout says."""
        r = self._rollout  # one read: a concurrent set applies to the next request, never half
        if r.mode == "off" or candidate_version is None or r.percent <= 0:
            return "production"
        point = stable_bucket(device_id, _SALT, candidate_version) if device_id else self._next_point()
        if point >= r.percent:
            return "production"
        return "canary" if r.mode == "canary" else "shadow"
