"""Decode-based image checks: what an image really is, decided by decoding.

Pillow's decompression-bomb limit stays on. JPEGs are checked at 1/8 scale
(libjpeg still reads every entropy-coded byte, so truncation is caught) which
keeps a 640×480 check well under a millisecond.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from visionloop.types import ImageInfo

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "TIFF", "GIF"})
EOI = b"\xff\xd9"
#: A JPEG without its end marker is accepted (with a warning) when no more than its
#: last row of 16×16 blocks (plus the upsampler's context rows) is incomplete, and
#: at most half of its rows.
MAX_MISSING_JPEG_ROWS = 24
_ROTATED = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageProblem(Exception):
    """An image that cannot be used: ``rule`` names the validation rule."""

    rule: str
    message: str


@dataclass(frozen=True)
class CheckedImage:
    info: ImageInfo
    data: bytes  # the bytes to store (a JPEG missing its end marker gets it appended)
    warnings: tuple[tuple[str, str], ...] = ()


def _open(data: bytes) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageProblem(
            "decompression_bomb", f"declares too many pixels to decode safely ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise ImageProblem("undecodable_image", "is not an image any decoder recognises") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageProblem("undecodable_image", f"cannot be read ({exc})") from None
    w, h = im.size
    limit = Image.MAX_IMAGE_PIXELS or 0
    if limit and w * h > limit:  # Pillow only warns between 1× and 2× its limit
        raise ImageProblem(
            "decompression_bomb",
            f"declares {w}×{h} = {w * h:,} pixels, over the limit of {limit:,}",
        )
    if w < 1 or h < 1:
        raise ImageProblem("undecodable_image", f"declares an empty size {w}×{h}")
    return im


def _decode(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image (JPEGs at 1/8 scale) and its real (stored) size."""
    im = _open(data)
    size = im.size
    if im.format in ("JPEG", "MPO"):
        im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
    im.load()
    return im, size


def _missing_rows(data: bytes) -> int:
    """How many bottom rows a JPEG decode leaves unwritten (two sentinels agree)."""
    counts = []
    for fill in (0, 255):
        im = _open(data)
        tile = im.tile[0]  # type: ignore[attr-defined]
        decoder = Image._getdecoder(im.mode, tile.codec_name, tile.args, im.decoderconfig)  # type: ignore[attr-defined]
        target = Image.core.fill(im.mode, im.size, (fill,) * len(im.getbands()))  # type: ignore[attr-defined]
        decoder.setimage(target, tile.extents)
        decoder.decode(data[tile.offset :])
        decoder.cleanup()
        sentinel = (fill,) * len(im.getbands()) if len(im.getbands()) > 1 else fill
        rows = 0
        for y in range(im.height - 1, -1, -1):
            if any(target.getpixel((x, y)) != sentinel for x in range(0, im.width, 3)):
                break
            rows += 1
        counts.append(rows)
    return min(counts)


def check_image(data: bytes) -> CheckedImage:
    """Decode ``data`` fully and return its facts, or raise :class:`ImageProblem`."""
    warnings: list[tuple[str, str]] = []
    try:
        im, size = _decode(data)
    except ImageProblem:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        head = _open(data)
        if head.format in ("JPEG", "MPO") and not data.rstrip(b"\x00").endswith(EOI):
            try:
                missing = _missing_rows(data)
                im, size = _decode(data + EOI)
            except Exception:  # any failure of the repair attempt: the image is truncated
                missing = head.height
            if missing > MAX_MISSING_JPEG_ROWS or missing * 2 > head.height:
                raise ImageProblem(
                    "truncated_image",
                    f"is a truncated JPEG: its last {missing} of {head.height} rows are missing",
                ) from None
            data = data + EOI
            warnings.append(
                (
                    "jpeg_missing_end_marker",
                    "is a JPEG without its end marker; it decodes, and is stored with the marker appended",
                )
            )
        else:
            raise ImageProblem("truncated_image", f"does not decode completely ({exc})") from None
    if im.format not in SUPPORTED_FORMATS:
        raise ImageProblem(
            "unsupported_format",
            f"is a {im.format} image; supported are {', '.join(sorted(SUPPORTED_FORMATS))}",
        )
    orientation = 1
    try:
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    except (ValueError, TypeError, OSError):
        orientation = 1
    w, h = (size[1], size[0]) if orientation in _ROTATED else size
    info = ImageInfo(width=w, height=h, format=str(im.format), mode=str(im.mode), orientation=orientation)
    return CheckedImage(info=info, data=data, warnings=tuple(warnings))


def load_rgb(data: bytes) -> Image.Image:
    """Decode an image blob to RGB with its EXIF orientation applied."""
    from PIL import ImageOps

    im: Image.Image = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    return im.convert("RGB")
