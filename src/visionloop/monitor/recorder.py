"""The recorder: every prediction's summary, off the request path, into windows with drift tests.

``observe`` (an observer, see :mod:`visionloop.serve.observe`) only puts the observation into a
bounded queue; when the queue is full the observation is dropped and counted — a request is never
slowed or failed by monitoring. :meth:`Recorder.run` — on a thread here, or in the child process
that ``visionloop serve`` starts (``process.py``, fed with packets from the server's process) —
does the rest: the image's statistics and
embedding (``features.py``), the window of its (model version, route), and when a window closes
(``window_size`` predictions, or ``window_max_s`` with at least ``min_window``, or on stop) the drift
tests against the model's reference (``drift.py``), one ``monitor_windows`` row with the features as
an npz blob, a signal and an alert when it drifted, and the window's sampled images as unlabeled
items. Database and blob writes happen once per window, never per prediction.

The reference of a model version is loaded (or built, which takes a while) by the loop the first
time one of its predictions arrives; ``warm`` versions are loaded before traffic.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import insert, select

from visionloop.config import MonitorConfig
from visionloop.monitor.alerts import Alerter
from visionloop.monitor.drift import DriftPolicy, DriftReport, decide
from visionloop.monitor.features import (
    STATS,
    FeatureTable,
    ImageSummary,
    build_table,
    prediction_stats,
    summarize_digests,
)
from visionloop.monitor.packet import Dropped, Packet, packet_of
from visionloop.monitor.reference import Reference, ReferenceSource, get_reference
from visionloop.monitor.signals import record_signal, signal_key
from visionloop.serve.observe import Observation
from visionloop.store import schema
from visionloop.store.blobs import sha256_hex
from visionloop.workspace import Workspace, utcnow

log = logging.getLogger("visionloop.monitor")
STOP = "stop"  # a string: it crosses to a recorder process (monitor/process.py) too
_RETRY_REFERENCE_S = 300.0
MAX_SAMPLES_PER_WINDOW = 100


def drift_policy(cfg: MonitorConfig) -> DriftPolicy:
    return DriftPolicy(cfg.alpha, cfg.psi_threshold, cfg.permutations, cfg.min_flagged, cfg.min_window)


@dataclass
class _Row:
    image: ImageSummary
    scores: Any
    class_ids: Any


@dataclass
class _Window:
    model_version: int
    route: str
    started_at: float
    ended_at: float = 0.0
    rows: list[_Row] = field(default_factory=list)
    samples: list[tuple[Image.Image, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ClosedWindow:
    """What closing a window wrote (tests and the bench read it)."""

    id: int
    model_version: int
    route: str
    n: int
    dropped: int
    drifted: bool
    report: DriftReport
    samples: int
    signal: str | None


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def window_summary(table: FeatureTable, reference: Reference | None) -> dict[str, Any]:
    """Aggregates of a window for charts: mean and quartiles per statistic, the class mix, and the
    reference's means beside them."""
    out: dict[str, Any] = {}
    for i, name in enumerate(STATS):
        col = table.stats[:, i]
        q1, med, q3 = (float(x) for x in np.quantile(col, [0.25, 0.5, 0.75])) if len(col) else (0.0,) * 3
        out[name] = {
            "mean": round(float(col.mean()) if len(col) else 0.0, 6),
            "p25": round(q1, 6),
            "p50": round(med, 6),
            "p75": round(q3, 6),
        }
    boxes = table.classes.sum(axis=0)
    total = int(boxes.sum())
    out["class_mix"] = {
        c: round(int(n) / total, 4) if total else 0.0 for c, n in zip(table.class_names, boxes, strict=True)
    }
    if reference is not None:
        out["reference"] = {
            name: round(float(reference.table.stats[:, i].mean()), 6) for i, name in enumerate(STATS)
        }
    return out


class Recorder:
    """See the module docstring. ``observe`` is the server's observer; ``start`` / ``stop`` the thread."""

    def __init__(
        self,
        ws: Workspace,
        cfg: MonitorConfig | None = None,
        *,
        references: ReferenceSource | None = None,
        alerter: Alerter | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        inbox: Any = None,
    ) -> None:
        self.ws = ws
        self.cfg = cfg or ws.settings.monitor
        self.policy = drift_policy(self.cfg)
        self._references = references or (lambda v: get_reference(ws, v))
        self.alerter = alerter or Alerter(
            self.cfg.webhook_url,
            allow_loopback=self.cfg.webhook_allow_loopback,
            timeout_s=self.cfg.webhook_timeout_s,
        )
        self._clock = clock
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        # observations (this process's server) or packets (a server process, see process.py)
        self._queue: Any = inbox if inbox is not None else queue.Queue(maxsize=self.cfg.queue_size)
        self._lock = threading.Lock()
        self._dropped: Counter[tuple[int, str]] = Counter()
        self._dropped_seen: Counter[tuple[int, str]] = Counter()
        self._windows: dict[tuple[int, str], _Window] = {}
        self._cache: dict[int, Reference | None] = {}
        self._retry_at: dict[int, float] = {}
        self._thread: threading.Thread | None = None
        self._drifting: set[tuple[int, str]] = set()  # keys whose last window drifted (alert on entry)
        self.received = 0
        self.processed = 0
        self.errors = 0
        self.closed: list[ClosedWindow] = []

    # -- the request side: enqueue or drop, nothing else ------------------------------------------
    def observe(self, observation: Observation) -> None:
        """Hand one prediction to the recorder; never blocks, never raises."""
        try:
            self._queue.put_nowait(observation)
        except queue.Full:
            with self._lock:
                self._dropped[(observation.model_version, observation.route)] += 1

    @property
    def dropped(self) -> int:
        with self._lock:
            return sum(self._dropped.values())

    def status(self) -> dict[str, Any]:
        return {
            "received": self.processed + self._queue.qsize(),
            "processed": self.processed,
            "dropped": self.dropped,
            "queued": self._queue.qsize(),
            "windows": len(self.closed),
            "errors": self.errors,
        }

    # -- the recorder's thread ---------------------------------------------------------------------
    def start(self, warm: Sequence[int] = ()) -> Recorder:
        """Start the thread; it first loads (or builds) the references of the ``warm`` versions."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run, args=(warm,), name="visionloop-monitor", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Process what is queued, close every open window (flush), and end the thread."""
        if self._thread is None:
            self._drain()
            self.flush()
            return
        self._queue.put(STOP)  # blocks only while the queue is full, never on a request's thread
        self._thread.join(timeout)
        self._thread = None

    def run(
        self,
        warm: Sequence[int] = (),
        *,
        alive: Callable[[], bool] = lambda: True,
        on_batch: Callable[[Recorder], None] = lambda _r: None,
    ) -> None:
        """The recorder's loop (its thread's, or a recorder process's): load the references of the
        ``warm`` versions, then record batches from the queue until told to stop or ``alive()`` is
        false; finally close every open window."""
        _yield_to_serving()
        for version in warm:
            self._reference(version)
        while alive():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                item = None
            batch = [] if item is None else [item]
            if item is not None and not _is_stop(item):
                time.sleep(_GATHER_S)  # let a batch gather: one wake-up and one numpy pass for many
            while item is not None and not _is_stop(item) and len(batch) < _BATCH:
                try:  # take what else is queued: summaries are computed a batch at a time
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            stop = any(_is_stop(b) for b in batch)
            work = [b for b in batch if not _is_stop(b)]
            if work:
                self._safely(self._process_batch, work)
            if stop:
                break
            self._safely(self._close_due)
            on_batch(self)
        self._drain()
        self.flush()
        on_batch(self)

    def _drain(self) -> None:
        work = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not _is_stop(item):
                work.append(item)
        if work:
            self._safely(self._process_batch, work)

    def _safely(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # the recorder keeps going: one bad image or a DB hiccup costs a log line
            self.errors += 1
            log.exception("monitoring failed on one step; it goes on")

    def process(self, observation: Observation) -> ClosedWindow | None:
        """Record one observation synchronously (what the thread does); the window it closed, if any."""
        before = len(self.closed)
        self._process(observation)
        return self.closed[-1] if len(self.closed) > before else None

    def _packet(self, item: Observation | Packet) -> Packet:
        if isinstance(item, Packet):
            return item
        sample = self.cfg.sample_rate > 0 and self._rng.random() < self.cfg.sample_rate
        return packet_of(item, sample=sample)

    def _count_dropped(self, key: tuple[int, str], total: int) -> None:
        """A sending process's running count of the drops of ``key``."""
        with self._lock:
            self._dropped[key] = max(self._dropped[key], total)

    def _process_batch(self, items: list[Any]) -> None:
        """Observations, packets, lists of packets (a recorder process's batches) and drop counts."""
        items = [x for i in items for x in (i if isinstance(i, list) else [i])]
        for d in items:
            if isinstance(d, Dropped):
                for key, n in d.counts.items():
                    self._count_dropped(key, n)
        work = [i for i in items if not isinstance(i, Dropped)]
        try:
            packets = [self._packet(i) for i in work]
            summaries = summarize_digests([p.digest for p in packets])
        except Exception:  # one bad observation must not cost the others: each on its own then
            for item in work:
                self._safely(self._process, item)
            return
        for packet, summary in zip(packets, summaries, strict=True):
            self._safely(self._record, packet, summary)

    def _process(self, item: Observation | Packet) -> None:
        packet = self._packet(item)
        self._record(packet, summarize_digests([packet.digest])[0])

    def _record(self, p: Packet, summary: ImageSummary) -> None:
        key = p.key
        if p.dropped:  # counted by the sending process
            self._count_dropped(key, p.dropped)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(p.model_version, p.route, p.received_at)
        window.rows.append(_Row(summary, p.scores, p.class_ids))
        window.ended_at = max(window.ended_at, p.received_at)
        if p.sample is not None and len(window.samples) < MAX_SAMPLES_PER_WINDOW:
            window.samples.append((p.sample.image(), p.received_at))
        self.processed += 1
        if len(window.rows) >= self.cfg.window_size:
            self._close(key)

    def _close_due(self) -> None:
        now = self._clock()
        for key, w in list(self._windows.items()):
            if len(w.rows) >= self.cfg.min_window and now - w.started_at >= self.cfg.window_max_s:
                self._close(key)

    def flush(self) -> list[ClosedWindow]:
        """Close every open window now (on stop); a short one is recorded without drift tests."""
        done = []
        for key in list(self._windows):
            self._safely(lambda k: done.append(self._close(k)), key)
        return done

    def _reference(self, version: int) -> Reference | None:
        if version in self._cache and (
            self._cache[version] is not None or self._clock() < self._retry_at[version]
        ):
            return self._cache[version]
        try:
            ref: Reference | None = self._references(version)
        except Exception as exc:
            ref = None
            log.error("no monitoring reference for v%s (%s); drift tests wait for one", version, exc)
        self._cache[version] = ref
        self._retry_at[version] = self._clock() + _RETRY_REFERENCE_S
        return ref

    # -- closing a window: one DB transaction, one blob, maybe a signal and an alert ---------------
    def _close(self, key: tuple[int, str]) -> ClosedWindow:
        w = self._windows.pop(key)
        with self._lock:
            dropped = self._dropped[key] - self._dropped_seen[key]
            self._dropped_seen[key] = self._dropped[key]
        ref = self._reference(w.model_version)
        if ref is not None:
            classes, threshold = ref.classes, ref.score_threshold
        else:
            from visionloop.registry.versions import get_model

            classes, threshold = tuple(get_model(self.ws, w.model_version).classes), 0.0
        table = build_table(
            [r.image for r in w.rows],
            [prediction_stats(r.scores, r.class_ids, len(classes), threshold) for r in w.rows],
            classes,
        )
        if ref is None:
            report = DriftReport({}, False, skipped=f"no reference for v{w.model_version}")
        else:
            report = decide(ref.table, table, self.policy, seed=self._seed + len(self.closed))
        blob = self.ws.blobs.put_bytes(table.to_npz(model_version=w.model_version, route=w.route))
        self.ws.blobs.flush()
        with self.ws.engine.begin() as conn:
            window_id = int(
                conn.execute(
                    insert(schema.monitor_windows).returning(schema.monitor_windows.c.id),
                    [
                        {
                            "model_version": w.model_version,
                            "route": w.route,
                            "started_at": _utc(w.started_at),
                            "ended_at": _utc(w.ended_at or w.started_at),
                            "n": len(table),
                            "dropped": dropped,
                            "reference_id": ref.dataset_version_id if ref else None,
                            "features_oid": blob,
                            "summary": window_summary(table, ref),
                            "drift": report.to_dict(),
                            "drifted": int(report.drifted),
                            "created_at": utcnow(),
                        }
                    ],
                ).scalar_one()
            )
        signal = None
        if report.drifted:
            signal = self._drifted(w, window_id, report, alert=key not in self._drifting)
            self._drifting.add(key)
        elif report.tests:
            self._drifting.discard(key)
        stored = self._store_samples(w) if w.samples else 0
        closed = ClosedWindow(
            window_id, w.model_version, w.route, len(table), dropped, report.drifted, report, stored, signal
        )
        self.closed.append(closed)
        return closed

    def _drifted(self, w: _Window, window_id: int, report: DriftReport, alert: bool) -> str | None:
        """Hand a drift of the production route to the agent (one signal per model) and alert when the
        drift starts (a window that drifted after one that did not): sustained drift is one alert, not
        one every window."""
        detail = {
            "window_id": window_id,
            "route": w.route,
            "flagged": report.flagged,
            "tests": {n: report.tests[n].to_dict() for n in report.flagged},
        }
        key = None
        if w.route == "production":
            key = signal_key("drift", w.model_version)
            new = record_signal(self.ws, "drift", w.model_version, detail, window_id)
            detail["signal"] = key if new else f"{key} (already signaled)"
        if alert:
            self.alerter.send({"alert": "drift", "model_version": w.model_version, **detail})
        else:
            log.info(
                "window %s of v%s (%s) drifted again: %s", window_id, w.model_version, w.route, report.flagged
            )
        return key

    def _store_samples(self, w: _Window) -> int:
        """The window's sampled production images as unlabeled items of source ``production:v<N>``."""
        encoded = []
        for image, at in w.samples:
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=95)
            data = buf.getvalue()
            encoded.append((sha256_hex(data), data, image.size, at))
        for oid, data, _, _ in encoded:
            self.ws.blobs.put_bytes(data, oid)
        self.ws.blobs.flush()
        now = utcnow()
        source = f"production:v{w.model_version}"
        with self.ws.engine.begin() as conn:
            oids = [e[0] for e in encoded]
            have_images = set(conn.scalars(select(schema.images.c.oid).where(schema.images.c.oid.in_(oids))))
            have_items = set(
                conn.scalars(select(schema.items.c.image_oid).where(schema.items.c.image_oid.in_(oids)))
            )
            fresh = list({e[0]: e for e in encoded if e[0] not in have_items}.values())
            if not fresh:
                return 0
            import_id = int(
                conn.execute(
                    insert(schema.imports).returning(schema.imports.c.id),
                    [
                        {
                            "source": source,
                            "format": "production",
                            "created_at": now,
                            "counts": {"unlabeled": len(fresh), "route": w.route},
                            "report_oid": None,
                        }
                    ],
                ).scalar_one()
            )
            images = [
                {
                    "oid": oid,
                    "width": size[0],
                    "height": size[1],
                    "format": "JPEG",
                    "mode": "RGB",
                    "orientation": 1,
                    "size_bytes": len(data),
                    "created_at": now,
                }
                for oid, data, size, _ in fresh
                if oid not in have_images
            ]
            if images:
                conn.execute(insert(schema.images), images)
            conn.execute(
                insert(schema.items),
                [
                    {
                        "image_oid": oid,
                        "name": f"{source}/{w.route}/{_utc(at).strftime('%Y%m%dT%H%M%S.%fZ')}-{oid[:8]}.jpg",
                        "labels_id": None,
                        "status": "unlabeled",
                        "source_split": None,
                        "import_id": import_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for oid, _, _, at in fresh
                ],
            )
        return len(fresh)


def _is_stop(item: Any) -> bool:
    return isinstance(item, str) and item == STOP


_BATCH = 64  # observations summarized together
_GATHER_S = 0.1  # how long a batch gathers (monitoring needs no hurry; the queue holds queue_size)


def _yield_to_serving() -> None:
    """Lower this thread's scheduling priority (Linux: a thread is a task with its own nice value).

    On a busy server the request threads then get the CPUs first and the recorder what is left; when
    nothing is left its queue fills and further summaries are dropped and counted, as designed,
    instead of slowing requests. Elsewhere (or without permission) it stays at normal priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
