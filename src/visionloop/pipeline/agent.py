"""``visionloop agent``: the daemon that keeps the loop turning.

Every tick it takes the pipeline lock (so two agents never train at once; the other
waits), finishes what is owed first — runs whose back-off has expired, runs a stop or
a vanished agent interrupted — then has the production model propose labels for new
unlabeled items (review tasks), reads monitoring's pending drift and degradation
signals, asks the trigger policy what holds now and starts one pipeline run per
trigger key it can claim. A failed run is retried with
exponential back-off up to ``policies.agent.max_attempts``; never in a tight loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from visionloop.errors import VisionloopError
from visionloop.pipeline import runs
from visionloop.pipeline.lease import Lease, make_owner
from visionloop.pipeline.runner import LEASE, attempt
from visionloop.pipeline.state import loop_state
from visionloop.pipeline.steps import Hook, quiet
from visionloop.pipeline.triggers import Trigger, decide
from visionloop.registry.aliases import resolve_alias
from visionloop.workspace import Workspace, utcnow


class Agent:
    """One agent process; ``tick`` does one round, ``run_forever`` ticks until ``stop`` is set."""

    def __init__(
        self,
        ws: Workspace,
        *,
        owner: str | None = None,
        hook: Hook | None = None,
        signals: Callable[[], Sequence[Trigger]] | None = None,
        clock: Callable[[], datetime] = utcnow,
        train_overrides: dict[str, Any] | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.ws = ws
        self.owner = owner or make_owner("agent")
        self.hook = hook or quiet
        # monitoring's pending drift / degradation signals unless the caller hands in its own
        self.signals = signals if signals is not None else self._monitor_signals
        self.clock = clock
        self.train_overrides = dict(train_overrides or {})
        self.cfg = ws.settings.policies.agent
        self.interval_s = interval_s if interval_s is not None else self.cfg.interval_s
        self.started = clock()
        self.stop = threading.Event()

    def _monitor_signals(self) -> Sequence[Trigger]:
        from visionloop.monitor.signals import pending_signals

        return pending_signals(self.ws)

    def _attempt(self, run_id: int, attempt_no: int) -> runs.PipelineRun:
        run = runs.get_run(self.ws, run_id)
        self.hook("run", {"id": run_id, "trigger": run.trigger, "detail": run.detail, "attempt": attempt_no})
        done = attempt(
            self.ws,
            run_id,
            attempt_no,
            actor=f"agent ({self.owner})",
            hook=self.hook,
            stop=self.stop,
            max_attempts=self.cfg.max_attempts,
            backoff_s=self.cfg.backoff_s,
            train_overrides=self.train_overrides,
        )
        self.hook("run_end", done.to_dict())
        return done

    def _autolabel(self) -> None:
        """Proposals of the production model for new unlabeled items (each becomes a review task)."""
        policy = self.ws.settings.policies.autolabel
        if not policy.enabled or resolve_alias(self.ws, "production") is None:
            return
        from visionloop.review.autolabel import autolabel

        try:
            res = autolabel(self.ws, auto_accept=policy.auto_accept or None)
        except VisionloopError as exc:  # e.g. production is not exported yet: say so, keep going
            self.hook("autolabel_error", {"error": exc.message})
            return
        if res.proposed:
            self.hook("autolabel", res.to_dict())

    def measure_live_accuracy(self) -> bool:
        """Live accuracy of production on reviewed production samples, when enough are reviewed and
        there are more than at its last measurement (a degradation becomes a signal this round
        reads). True when it measured."""
        from visionloop.monitor.accuracy import last_measured, live_accuracy, reviewed_samples

        version = resolve_alias(self.ws, "production")
        if version is None:
            return False
        n = len(reviewed_samples(self.ws))
        if n < self.ws.settings.monitor.min_accuracy_images or n == last_measured(self.ws, version):
            return False
        try:
            res = live_accuracy(self.ws)
        except VisionloopError as exc:  # e.g. production is not exported: say so, keep going
            self.hook("accuracy_error", {"error": exc.message})
            return False
        self.hook(
            "live_accuracy",
            {"model_version": res.model_version, "n_images": res.n_images, "degraded": res.degraded},
        )
        return True

    def tick(self) -> runs.PipelineRun | None:
        """One round: None when there was nothing to do or another agent holds the lock."""
        ws = self.ws
        with Lease(ws, LEASE, self.owner, self.cfg.lease_ttl_s) as lease:
            if not lease.held:
                return None
            for stale in runs.stale_running(ws):  # we hold the lock, so nobody runs these any more
                runs.finish_run(ws, stale.id, "interrupted", error="its pipeline process ended mid-run")
            for due in runs.due_runs(ws, self.clock()):
                claimed = runs.claim_retry(ws, due.id, self.owner, due.status)
                if claimed is not None:
                    return self._attempt(due.id, claimed)
            self._autolabel()
            self.measure_live_accuracy()
            state = loop_state(ws, self.signals())
            for trigger in decide(state, ws.settings.policies.retrain, self.clock(), since=self.started):
                run_id = runs.create_run(ws, trigger, self.owner)
                if run_id is not None:
                    return self._attempt(run_id, 1)
        return None

    def run_forever(self, max_runs: int | None = None) -> int:
        """Tick every ``interval_s`` (default ``policies.agent.interval_s``) until stopped (or after ``max_runs`` runs ended);
        returns how many pipeline attempts it made."""
        made = 0
        while not self.stop.is_set():
            done = self.tick()
            if done is not None:
                made += 1
                if max_runs is not None and made >= max_runs:
                    break
                continue  # there may be more owed: look again at once
            self.stop.wait(self.interval_s)
        return made
