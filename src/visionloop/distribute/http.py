"""The distribution routes the serve app mounts when it serves a workspace.

``GET /v1/releases/{channel}/manifest?device_id=ID`` answers the signed manifest meant for the
device (staged rollout, see ``rollout``), with an ``ETag``; ``If-None-Match`` with it gives
``304``. ``GET /v1/releases/files/{sha256}`` serves a file some release names, by its hash,
with single ``Range`` requests (``206`` + ``Content-Range``; ``416`` when the range is not
satisfiable or not understood). Nothing here needs the signing key or torch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from visionloop.distribute.releases import check_channel, release_for, released_files
from visionloop.errors import UsageError
from visionloop.store.blobs import is_oid
from visionloop.workspace import Workspace

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 1 << 16


def _error(status: int, what: str, fix: str) -> JSONResponse:
    return JSONResponse({"error": what, "fix": fix}, status_code=status)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``(first, last)`` a single-range ``Range`` header asks of a file of
    ``size`` bytes; None when it is malformed, multi-range or not satisfiable."""
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # a suffix: the last N bytes
        n = int(m.group(2))
        return None if n == 0 or size == 0 else (max(0, size - n), size - 1)
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def release_router(ws: Workspace, authorized: Callable[[Request], bool] | None = None) -> APIRouter:
    """The release routes over workspace ``ws`` (``authorized`` guards them when given)."""
    router = APIRouter()

    def denied(request: Request) -> JSONResponse | None:
        if authorized is None or authorized(request):
            return None
        return _error(401, "missing or wrong API key", "send it in the X-API-Key header")

    @router.get("/v1/releases/{channel}/manifest")
    def manifest(channel: str, request: Request, device_id: str | None = None) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        try:
            check_channel(channel)
        except UsageError as exc:
            return _error(400, exc.what, exc.fix or "")
        release = release_for(ws, channel, device_id)
        if release is None:
            return _error(
                404,
                f"channel {channel!r} has no release for this device",
                "publish one with `visionloop release publish MODEL --channel CHANNEL`",
            )
        body = release.envelope_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @router.get("/v1/releases/files/{sha256}")
    def release_file(sha256: str, request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        if not is_oid(sha256) or sha256 not in released_files(ws):
            return _error(404, f"no released file has sha256 {sha256[:64]!r}", "use a path from a manifest")
        size = ws.blobs.size(sha256)
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{sha256}"',
            "Cache-Control": "public, max-age=31536000, immutable",
        }
        first, last, status = 0, size - 1, 200
        asked = request.headers.get("range")
        if asked is not None:
            span = parse_range(asked, size)
            if span is None:
                return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
            (first, last), status = span, 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(last - first + 1)
        return StreamingResponse(
            _read(ws, sha256, first, last + 1),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    return router


def _read(ws: Workspace, oid: str, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start`` up to ``end`` of a blob, in chunks (a local file is never read whole)."""
    if not ws.blobs.local:
        yield ws.blobs.get(oid)[start:end]
        return
    with ws.blobs.path(oid).open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
