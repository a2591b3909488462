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
from visionloop.monitor.packet import Dropped, Packet, packet_of
from visionloop.monitor.recorder import STOP
from visionloop.serve.observe import Observation
from visionloop.workspace import Workspace

log = logging.getLogger("visionloop.monitor")
_PROCESSED, _WINDOWS, _ERRORS = range(3)
_BATCH = 32  # packets sent together
_FLUSH_S = 0.1  # the longest a packet waits for its batch (while traffic flows)


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
        # packets travel in batches (one pickling and one wake-up of the queue's feeder thread per
        # batch, not per request); the queue holds queue_size predictions' worth of batches
        self._queue: Any = ctx.Queue(maxsize=max(1, self.cfg.queue_size // _BATCH))
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
        self._reported_dead = False
        self._pending: list[Packet] = []
        self._pending_since = 0.0
        self._process: Any = None
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, warm: Sequence[int] = ()) -> RecorderProcess:
        if self._process is None:
            self._process = self._ctx.Process(
                target=_child,
                args=(self._root, self.cfg, self._seed, list(warm), self._queue, self._counters, os.getpid()),
                name="visionloop-monitor",
                daemon=True,
            )
            self._process.start()
            self._flusher = threading.Thread(
                target=self._flush_stale, name="visionloop-monitor-flush", daemon=True
            )
            self._flusher.start()
        return self

    def _flush_stale(self) -> None:
        """Send a batch that waited _FLUSH_S (low traffic) — a few wake-ups a second, no more."""
        while not self._stopping.wait(_FLUSH_S):
            self._flush(force=False)

    def _flush(self, force: bool) -> None:
        with self._lock:
            if not self._pending or not (force or time.monotonic() - self._pending_since >= _FLUSH_S):
                return
            batch, self._pending = self._pending, []
        self._send(batch)

    def _send(self, batch: list[Packet]) -> None:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            with self._lock:
                for p in batch:
                    self._dropped[p.key] += 1
            if self._process is not None and not self._process.is_alive() and not self._reported_dead:
                self._reported_dead = True
                log.error(
                    "the recorder process ended (exit code %s): predictions are dropped and counted until "
                    "the server restarts",
                    self._process.exitcode,
                )
        else:
            with self._lock:
                self._sent += len(batch)

    def observe(self, observation: Observation) -> None:
        """Hand one prediction to the recorder process; never blocks, never raises."""
        key = (observation.model_version, observation.route)
        try:
            with self._lock:
                rate = self.cfg.sample_rate
                sample = rate > 0 and self._rng.random() < rate
                dropped = self._dropped[key]
            packet = packet_of(observation, sample=sample, dropped=dropped)
            batch = None
            with self._lock:
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.append(packet)
                if len(self._pending) >= _BATCH or time.monotonic() - self._pending_since >= _FLUSH_S:
                    batch, self._pending = self._pending, []
            if batch:
                self._send(batch)
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
        self._stopping.set()
        if self._flusher is not None:
            self._flusher.join(5)
        self._flush(force=True)
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
