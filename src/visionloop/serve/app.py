"""The HTTP API: POST /v1/detect, GET /v1/model, /healthz, /readyz, /metrics, the rollout's admin
routes (``serve.rollout_http``); with a workspace, the release routes of ``distribute.http``
(GET /v1/releases/...).

Every detect answer names the model version that answered and its route (``production`` or
``canary``) in its JSON and in the ``X-Model-Version`` / ``X-Model-Route`` headers; a request
shadowed to the candidate is answered by production, and the copy runs after the answer is
computed (``serve.shadow``)."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from visionloop.errors import DataError
from visionloop.serve.model import Holder, Loaded, decode, detect, inference_slots, load
from visionloop.serve.observe import Observation, Observer
from visionloop.serve.rollout_control import RolloutControl
from visionloop.serve.rollout_http import rollout_router
from visionloop.serve.shadow import ShadowResult, ShadowRunner

if TYPE_CHECKING:
    from visionloop.serve.follow import AliasFollower

MAX_UPLOAD = 10 * 2**20
log = logging.getLogger("visionloop.serve")


def _error(status: int, what: str, fix: str) -> JSONResponse:
    return JSONResponse({"error": what, "fix": fix}, status_code=status)


def _infer(
    loaded: Loaded,
    data: bytes,
    score_threshold: float | None,
    observer: Observer | None = None,
    route: str = "production",
    received_at: float = 0.0,
) -> dict[str, Any]:
    """Decode, preprocess and detect: the CPU-bound part of a request (raises DataError on bad bytes).

    ``observer`` (monitoring) is handed the image and the answer; its faults never reach the client."""
    return _answer(loaded, data, score_threshold, observer, route, received_at)[0]


def _answer(
    loaded: Loaded,
    data: bytes,
    score_threshold: float | None,
    observer: Observer | None,
    route: str,
    received_at: float,
) -> tuple[dict[str, Any], Image.Image]:
    """:func:`_infer`, also giving the decoded image (a shadow copy reuses it)."""
    t0 = time.perf_counter()
    rgb = decode(data)
    threshold = loaded.bundle.manifest["score_threshold"] if score_threshold is None else score_threshold
    detections = detect(loaded, rgb, float(threshold))
    if observer is not None:
        try:
            observer(
                Observation(
                    loaded.version,
                    route,
                    rgb,
                    detections,
                    time.perf_counter() - t0,
                    received_at or time.time(),
                )
            )
        except Exception:  # an observer must never fail a request
            log.exception("the prediction observer failed; the request is answered anyway")
    result = {
        "model_version": loaded.version,
        "route": route,
        "image": {"width": rgb.width, "height": rgb.height},
        "detections": detections,
    }
    return result, rgb


def create_app(
    bundle: Path | str | Holder,
    *,
    api_key: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD,
    follower: AliasFollower | None = None,
    observer: Observer | None = None,
    rollout: RolloutControl | None = None,
    shadow_in_flight: int = 2,
) -> FastAPI:
    """An app serving ``bundle`` (a folder, verified and warmed before the app exists, or a holder).

    With ``follower`` (which must hold the same holder), the app follows an alias while it runs.
    ``observer`` is handed every prediction (see :mod:`visionloop.serve.observe`), shadow ones
    included. ``rollout`` (over the same holder) splits traffic with a candidate; without it the
    rollout is off until set over HTTP, which needs a candidate. At most ``shadow_in_flight``
    shadow copies run at once; more are skipped."""
    holder = bundle if isinstance(bundle, Holder) else Holder(load(bundle))
    if follower is not None and follower.holder is not holder:
        raise ValueError("the follower must swap the holder this app serves")
    if rollout is not None and rollout.production is not holder:
        raise ValueError("the rollout must split the traffic of the holder this app serves")
    control = rollout or RolloutControl(holder)
    registry = CollectorRegistry()
    requests = Counter(
        "visionloop_requests_total",
        "Detect requests, by the version and route that answered",
        ["status", "model_version", "route"],
        registry=registry,
    )
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
    latency = Histogram(
        "visionloop_detect_seconds",
        "Detect latency",
        ["model_version", "route"],
        registry=registry,
        buckets=buckets,
    )
    shadow_runs = Counter(
        "visionloop_shadow_requests_total",
        "Shadow copies the candidate ran (never answered)",
        ["model_version", "status"],
        registry=registry,
    )
    shadow_latency = Histogram(
        "visionloop_shadow_seconds", "Shadow inference", ["model_version"], registry=registry, buckets=buckets
    )
    shadow_agreement = Histogram(
        "visionloop_shadow_agreement",
        "Agreement of the candidate's shadow answer with production's (see serve.shadow.agreement)",
        ["model_version"],
        registry=registry,
        buckets=(0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0),
    )
    shadow_skipped = Counter(
        "visionloop_shadow_skipped_total",
        "Shadow copies dropped: the shadow slots were full",
        registry=registry,
    )

    def shadowed(r: ShadowResult) -> None:
        v = str(r.candidate_version)
        shadow_runs.labels(v, "ok").inc()
        shadow_latency.labels(v).observe(r.seconds)
        shadow_agreement.labels(v).observe(r.agreement)
        control.count("shadow")

    def shadow_skip() -> None:
        shadow_skipped.inc()
        control.count("shadow_skipped")

    def shadow_failed(version: int) -> None:
        shadow_runs.labels(str(version), "error").inc()
        control.count("shadow_failed")

    shadow = ShadowRunner(
        max_in_flight=shadow_in_flight,
        observer=observer,
        on_result=shadowed,
        on_skip=shadow_skip,
        on_error=shadow_failed,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
        await to_thread.run_sync(control.start)
        try:
            yield
        finally:
            await to_thread.run_sync(control.stop)
            if follower is not None:
                await to_thread.run_sync(follower.stop)
            await to_thread.run_sync(shadow.close)

    def following() -> dict[str, Any]:
        return {"alias": None} if follower is None else follower.status()

    app = FastAPI(title="visionloop serve", version="1", lifespan=lifespan)
    app.state.holder = holder
    app.state.follower = follower
    app.state.rollout = control
    # decode + inference run in worker threads (see inference_slots), so the event loop keeps reading
    # and answering other requests meanwhile
    limiter = CapacityLimiter(inference_slots())

    def authorized(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        return hmac.compare_digest(given.encode(), api_key.encode())

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        return {
            "status": "ready",
            "model_version": holder.current.version,
            **following(),
            "rollout": control.summary(),
        }

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    def model(request: Request) -> Any:
        if not authorized(request):
            return _error(401, "missing or wrong API key", "send it in the X-API-Key header")
        m = holder.current.bundle.manifest
        return (
            following()
            | {"rollout": control.summary()}
            | {
                k: m[k]
                for k in (
                    "model_version",
                    "architecture",
                    "classes",
                    "input",
                    "output",
                    "score_threshold",
                    "metrics",
                    "files",
                )
            }
        )

    @app.post("/v1/detect")
    async def detect_route(request: Request, score_threshold: float | None = None) -> Any:
        received_at = time.time()
        version = str(holder.current.version)  # labels a request refused before it is routed
        if not authorized(request):
            requests.labels("401", version, "production").inc()
            return _error(401, "missing or wrong API key", "send it in the X-API-Key header")
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_upload_bytes:
            requests.labels("413", version, "production").inc()
            return _error(
                413,
                f"the upload is {declared} bytes; the limit is {max_upload_bytes}",
                "send a smaller image",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload_bytes:
                requests.labels("413", version, "production").inc()
                return _error(
                    413, f"the upload exceeds the limit of {max_upload_bytes} bytes", "send a smaller image"
                )
        data = bytes(body)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):

            async def replay() -> dict[str, Any]:  # the body was already read (under the size limit)
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            form = await Request(request.scope, replay).form()
            upload = next((v for v in form.values() if hasattr(v, "read")), None)
            if upload is None:
                requests.labels("400", version, "production").inc()
                return _error(400, "the multipart form has no file", "send the image as a file field")
            data = await upload.read()
        if not data:
            requests.labels("400", version, "production").inc()
            return _error(400, "the request has no image", "send image bytes or a multipart file")
        # one model for the whole request, even if a swap or a rollback happens meanwhile
        choice = control.choose(request.headers.get("x-device-id"))
        loaded = choice.answer
        version, route = str(loaded.version), "canary" if choice.route == "canary" else "production"
        t0 = time.perf_counter()
        try:
            result, rgb = await to_thread.run_sync(
                _answer, loaded, data, score_threshold, observer, route, received_at, limiter=limiter
            )
        except DataError as exc:
            requests.labels("415", version, route).inc()
            return _error(415, exc.what, exc.fix or "")
        latency.labels(version, route).observe(time.perf_counter() - t0)
        requests.labels("200", version, route).inc()
        control.count(route)
        if choice.shadow is not None:  # after the answer, never awaited: the client does not wait
            candidate = choice.shadow  # at its own threshold unless the client chose one
            own = candidate.bundle.manifest["score_threshold"] if score_threshold is None else score_threshold
            shadow.submit(candidate, rgb, float(own), loaded.version, result["detections"], received_at)
        # already plain JSON types: skip FastAPI's response encoding
        return JSONResponse(result, headers={"X-Model-Version": version, "X-Model-Route": route})

    app.include_router(rollout_router(control, authorized))
    if follower is not None:  # serving a workspace: its signed releases are distributed to apps too
        from visionloop.distribute.http import release_router

        app.include_router(release_router(follower.ws, authorized if api_key else None))
    return app
