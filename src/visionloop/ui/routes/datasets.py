"""Dataset pages: versions, one version's statistics, the diff of two, and the image browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from visionloop.data.versions import diff_versions, list_versions, resolve
from visionloop.errors import BlobNotFoundError
from visionloop.ui.browse import Filters, browse_items, facets, image_media_type
from visionloop.ui.web import page
from visionloop.workspace import Workspace

router = APIRouter()
PAGE_SIZE = 48


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.get("/datasets")
def datasets(request: Request) -> Response:
    """Every dataset version, newest first."""
    return page(request, "datasets.html", datasets=list_versions(_ws(request)))


@router.get("/datasets/diff")
def dataset_diff(request: Request, a: str = "", b: str = "") -> Response:
    """What changed from version ``a`` to version ``b`` (default: the newest and its parent)."""
    ws = _ws(request)
    versions = list_versions(ws)
    if not b and versions:
        b = versions[0].id
    if not a and versions:
        a = versions[0].parent or versions[0].id
    diff = diff_versions(ws, a, b) if a and b else None
    return page(request, "diff.html", versions=versions, a=a, b=b, diff=diff)


@router.get("/datasets/{ref}")
def dataset(request: Request, ref: str) -> Response:
    """One version: message, parent and statistics per class, split, boxes per image, box sizes."""
    ws = _ws(request)
    version = resolve(ws, ref)
    counts = list(version.stats.get("boxes_per_class", {}).values())
    return page(request, "dataset.html", v=version, stats=version.stats, max_count=max([1, *counts]))


@router.get("/images")
def images(
    request: Request,
    cls: Annotated[str, Query(alias="class")] = "",
    split: str = "",
    status: str = "",
    origin: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The image browser: images with their current boxes, filtered by class, split, status, origin."""
    ws = _ws(request)
    filters = Filters(cls or None, split or None, status or None, origin or None)
    items, total = browse_items(ws, filters, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "images.html",
        items=items,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        filters=filters,
        facets=facets(ws),
        query={"class": cls, "split": split, "status": status, "origin": origin},
    )


@router.get("/images/{oid}/content")
def image_content(request: Request, oid: str) -> Response:
    """The bytes of a stored image (only images: other blobs are not served here)."""
    ws = _ws(request)
    media_type = image_media_type(ws, oid)
    if media_type is None:
        raise BlobNotFoundError(f"no image {oid[:12]!r}", fix="pick an image from the browser")
    return Response(
        ws.blobs.get(oid), media_type=media_type, headers={"Cache-Control": "private, max-age=86400"}
    )
