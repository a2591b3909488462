"""The recorder in a process of its own: what ``visionloop serve --monitor`` runs.

A recorder thread inside the server shares the server's interpreter lock: while it computes
statistics, runs drift tests or writes a window, the request threads wait for the lock (and a
low-priority thread descheduled while holding it makes them wait longer). Here the server keeps only
:meth:`RecorderProcess.observe` — a packet (``packet.py``, about 0.05 ms) put into a bounded
``multiprocessing`` queue, or a dropped-and-counted prediction when that queue is full — and a
child process runs the :class:`~visionloop.monitor.recorder.Recorder`'s loop on the same workspace,
at the lowest CPU priority. The child ends with the server (a stop message, or the parent gone).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visionloop.config import MonitorConfig
from visionloop.monitor.packet import Dropped, packet_of
from visionloop.monitor.recorder import STOP
from visionloop.serve.observe import Observation
from visionloop.workspace import Workspace

log = logging.getLogger("visionloop.monitor")
_PROCESSED, _WINDOWS, _ERRORS = range(3)


def _child(
    root: str, cfg: MonitorConfig, seed: int, warm: list[int], inbox: Any, counters: Any, parent: int
) -> None:
    from visionloop.monitor.recorder import Recorder
    from visionloop.workspace import open_workspace

    def publish(rec: Recorder) -> None:
        counters[_PROCESSED], counters[_WINDOWS], counters[_ERRORS] = (
            rec.processed,
            len(rec.closed),
            rec.errors,
        )

    with open_workspace(Path(root)) as ws:
        rec = Recorder(ws, cfg, seed=seed, inbox=inbox)
        rec.run(warm, alive=lambda: os.getppid() == parent, on_batch=publish)


class RecorderProcess:
    """The server's side of a recorder process: ``observe`` is the server's observer."""

    def __init__(self, ws: Workspace, cfg: MonitorConfig | None = None, *, seed: int = 0) -> None:
        self.cfg = cfg or ws.settings.monitor
        ctx = mp.get_context("spawn")  # a clean interpreter: no copy of the server's threads or sockets
        self._queue: Any = ctx.Queue(maxsize=self.cfg.queue_size)
        # never wait at exit for packets no process will read (a child that died): stop() is the
        # orderly end, and it waits for the child, which reads the queue to its end
        self._queue.cancel_join_thread()
        self._counters: Any = ctx.Array("q", 3, lock=False)
        self._root = str(ws.root)
        self._seed = seed
        self._ctx = ctx
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._dropped: Counter[tuple[int, str]] = Counter()
        self._sent = 0
        self._failed = 0
        self._process: Any = None

    def start(self, warm: Sequence[int] = ()) -> RecorderProcess:
        if self._process is None:
            self._process = self._ctx.Process(
                target=_child,
                args=(self._root, self.cfg, self._seed, list(warm), self._queue, self._counters, os.getpid()),
                name="visionloop-monitor",
                daemon=True,
            )
            self._process.start()
        return self

    def observe(self, observation: Observation) -> None:
        """Hand one prediction to the recorder process; never blocks, never raises."""
        key = (observation.model_version, observation.route)
        try:
            with self._lock:
                rate = self.cfg.sample_rate
                sample = rate > 0 and self._rng.random() < rate
                dropped = self._dropped[key]
            self._queue.put_nowait(packet_of(observation, sample=sample, dropped=dropped))
            with self._lock:
                self._sent += 1
        except queue.Full:
            with self._lock:
                self._dropped[key] += 1
        except Exception:  # a request must not fail for monitoring's sake
            with self._lock:
                self._failed += 1
            if self._failed == 1:
                log.exception("monitoring could not take a prediction; it goes on")

    @property
    def dropped(self) -> int:
        with self._lock:
            return sum(self._dropped.values())

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def status(self) -> dict[str, Any]:
        processed = int(self._counters[_PROCESSED])
        with self._lock:
            sent, dropped = self._sent, sum(self._dropped.values())
        return {
            "received": sent + dropped,
            "processed": processed,
            "dropped": dropped,
            "queued": max(0, sent - processed),
            "windows": int(self._counters[_WINDOWS]),
            "errors": int(self._counters[_ERRORS]) + self._failed,
            "alive": self.alive,
        }

    def stop(self, timeout: float = 60.0) -> None:
        """Let the child record what is queued and close its windows, then end it."""
        proc, self._process = self._process, None
        if proc is None:
            self._queue.close()
            return
        deadline = time.monotonic() + timeout
        if proc.is_alive():
            with contextlib.suppress(queue.Full):
                with self._lock:
                    dropped = Dropped(dict(self._dropped))
                self._queue.put(dropped, timeout=max(0.1, deadline - time.monotonic()))
                self._queue.put(STOP, timeout=max(0.1, deadline - time.monotonic()))
            proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            log.error("the recorder process did not stop in %.0f s; ending it", timeout)
            proc.terminate()
            proc.join(5)
        self._queue.close()
