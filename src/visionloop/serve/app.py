"""The HTTP API: POST /v1/detect, GET /v1/model, /healthz, /readyz, /metrics; with a workspace,
the release routes of ``distribute.http`` (GET /v1/releases/...)."""

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
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from visionloop.errors import DataError
from visionloop.serve.model import Holder, Loaded, decode, detect, inference_slots, load
from visionloop.serve.observe import Observation, Observer

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
    return {
        "model_version": loaded.version,
        "image": {"width": rgb.width, "height": rgb.height},
        "detections": detections,
    }


def create_app(
    bundle: Path | str | Holder,
    *,
    api_key: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD,
    follower: AliasFollower | None = None,
    observer: Observer | None = None,
) -> FastAPI:
    """An app serving ``bundle`` (a folder, verified and warmed before the app exists, or a holder).

    With ``follower`` (which must hold the same holder), the app follows an alias while it runs.
    ``observer`` is handed every prediction (see :mod:`visionloop.serve.observe`)."""
    holder = bundle if isinstance(bundle, Holder) else Holder(load(bundle))
    if follower is not None and follower.holder is not holder:
        raise ValueError("the follower must swap the holder this app serves")
    registry = CollectorRegistry()
    requests = Counter(
        "visionloop_requests_total", "Detect requests", ["status", "model_version"], registry=registry
    )
    latency = Histogram(
        "visionloop_detect_seconds",
        "Detect latency",
        ["model_version"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                await to_thread.run_sync(follower.stop)

    def following() -> dict[str, Any]:
        return {"alias": None} if follower is None else follower.status()

    app = FastAPI(title="visionloop serve", version="1", lifespan=lifespan)
    app.state.holder = holder
    app.state.follower = follower
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
        return {"status": "ready", "model_version": holder.current.version, **following()}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    def model(request: Request) -> Any:
        if not authorized(request):
            return _error(401, "missing or wrong API key", "send it in the X-API-Key header")
        m = holder.current.bundle.manifest
        return following() | {
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

    @app.post("/v1/detect")
    async def detect_route(request: Request, score_threshold: float | None = None) -> Any:
        received_at = time.time()
        loaded = holder.current  # one model for the whole request, even if a swap happens meanwhile
        version = str(loaded.version)
        if not authorized(request):
            requests.labels("401", version).inc()
            return _error(401, "missing or wrong API key", "send it in the X-API-Key header")
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_upload_bytes:
            requests.labels("413", version).inc()
            return _error(
                413,
                f"the upload is {declared} bytes; the limit is {max_upload_bytes}",
                "send a smaller image",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload_bytes:
                requests.labels("413", version).inc()
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
                requests.labels("400", version).inc()
                return _error(400, "the multipart form has no file", "send the image as a file field")
            data = await upload.read()
        if not data:
            requests.labels("400", version).inc()
            return _error(400, "the request has no image", "send image bytes or a multipart file")
        t0 = time.perf_counter()
        try:
            result = await to_thread.run_sync(
                _infer, loaded, data, score_threshold, observer, "production", received_at, limiter=limiter
            )
        except DataError as exc:
            requests.labels("415", version).inc()
            return _error(415, exc.what, exc.fix or "")
        latency.labels(version).observe(time.perf_counter() - t0)
        requests.labels("200", version).inc()
        return JSONResponse(result)  # already plain JSON types: skip FastAPI's response encoding

    if follower is not None:  # serving a workspace: its signed releases are distributed to apps too
        from visionloop.distribute.http import release_router

        app.include_router(release_router(follower.ws, authorized if api_key else None))
    return app
