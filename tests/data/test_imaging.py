"""Tests of decode-based image checks: images are built in memory with Pillow (or by hand)."""

from __future__ import annotations

import io
import random
import resource
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from visionloop.data.imaging import EOI, SUPPORTED_FORMATS, CheckedImage, ImageProblem, check_image
from visionloop.data.ingest import import_dataset
from visionloop.store import schema
from visionloop.workspace import Workspace

# --- builders ------------------------------------------------------------------------------------


def _encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _noise(size: tuple[int, int], seed: int = 0, mode: str = "RGB") -> Image.Image:
    """Random pixels, so compressed data spreads evenly over the rows."""
    n = size[0] * size[1] * len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, random.Random(seed).randbytes(n))


def _jpeg(size: tuple[int, int] = (64, 48), mode: str = "RGB", **params: object) -> bytes:
    return _encode(_noise(size, mode=mode), "JPEG", quality=90, **params)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width``×``height`` RGB with a tiny (incomplete) IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _scan_start(jpeg: bytes) -> int:
    """Offset of the first entropy-coded byte (just after the SOS segment)."""
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")


def _problem(data: bytes) -> ImageProblem:
    with pytest.raises(ImageProblem) as caught:
        check_image(data)
    return caught.value


# --- accepted images -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "expected_mode"),
    [
        ("JPEG", "RGB", "RGB"),
        ("JPEG", "L", "L"),
        ("JPEG", "CMYK", "CMYK"),
        ("PNG", "RGB", "RGB"),
        ("PNG", "RGBA", "RGBA"),
        ("PNG", "L", "L"),
        ("PNG", "P", "P"),
        ("PNG", "I;16", "I;16"),
        ("BMP", "RGB", "RGB"),
        ("GIF", "P", "P"),
        ("WEBP", "RGB", "RGB"),
        ("TIFF", "RGB", "RGB"),
    ],
)
def test_accepted_formats_and_modes(fmt: str, mode: str, expected_mode: str) -> None:
    data = _encode(Image.new(mode, (37, 23)), fmt)
    checked = check_image(data)
    assert isinstance(checked, CheckedImage)
    info = checked.info
    assert (info.width, info.height, info.format, info.orientation) == (37, 23, fmt, 1)
    assert info.mode == expected_mode
    assert checked.warnings == ()
    assert checked.data == data  # stored unchanged


def test_large_jpeg_reports_real_size_not_draft_size() -> None:
    data = _jpeg((640, 480))
    info = check_image(data).info
    assert (info.width, info.height, info.format, info.mode) == (640, 480, "JPEG", "RGB")


@pytest.mark.parametrize(
    ("orientation", "size"),
    [(1, (40, 20)), (3, (40, 20)), (5, (20, 40)), (6, (20, 40)), (7, (20, 40)), (8, (20, 40))],
)
def test_exif_orientation(orientation: int, size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.new("RGB", (40, 20), (10, 200, 30)), "JPEG", exif=exif)
    info = check_image(data).info
    assert (info.width, info.height) == size
    assert info.orientation == orientation


def test_exif_orientation_png() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.new("RGB", (40, 20)), "PNG", exif=exif)
    info = check_image(data).info
    assert (info.width, info.height, info.orientation, info.format) == (20, 40, 6, "PNG")


# --- JPEG truncation -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 48), (256, 256)])
def test_jpeg_missing_end_marker_is_repaired(size: tuple[int, int]) -> None:
    full = _jpeg(size)
    assert full.endswith(EOI)
    checked = check_image(full[:-2])
    assert [rule for rule, _ in checked.warnings] == ["jpeg_missing_end_marker"]
    assert "without its end marker" in checked.warnings[0][1]
    assert checked.data.endswith(b"\xff\xd9")
    assert checked.data == full  # exactly the marker was appended
    assert (checked.info.width, checked.info.height, checked.info.format) == (*size, "JPEG")


def test_jpeg_cut_in_half_is_truncated() -> None:
    full = _jpeg((256, 256))
    p = _problem(full[: len(full) // 2])
    assert p.rule == "truncated_image"
    assert "truncated JPEG" in p.message
    assert "of 256 rows are missing" in p.message


@pytest.mark.parametrize(
    "size",
    [
        (64, 64),
        pytest.param(
            (16, 16),
        ),
    ],
)
def test_jpeg_without_any_scan_data_is_truncated(size: tuple[int, int]) -> None:
    full = _jpeg(size)
    p = _problem(full[: _scan_start(full)])
    assert p.rule == "truncated_image"


def test_jpeg_cut_inside_headers_is_a_problem_not_a_crash() -> None:
    full = _jpeg((64, 64))
    cut = full.index(b"\xff\xc4")  # ends after a complete segment, before the Huffman tables
    p = _problem(full[:cut])
    assert p.rule in ("truncated_image", "undecodable_image")


def test_small_corrupt_jpeg_is_a_problem_not_a_crash() -> None:
    full = _encode(Image.new("RGB", (16, 16), (200, 30, 30)), "JPEG")
    data = full[: _scan_start(full) + 2] + b"\xff\xc0"  # a frame marker in the middle of the scan
    p = _problem(data)
    assert p.rule == "truncated_image"


def test_same_corruption_on_larger_jpeg_is_truncated() -> None:
    full = _encode(Image.new("RGB", (64, 64), (200, 30, 30)), "JPEG")
    p = _problem(full[: _scan_start(full) + 2] + b"\xff\xc0")
    assert p.rule == "truncated_image"
    assert "64 of 64 rows" in p.message


def test_png_cut_in_half_is_truncated() -> None:
    full = _encode(_noise((64, 64)), "PNG")
    p = _problem(full[: len(full) // 2])
    assert p.rule == "truncated_image"
    assert "does not decode completely" in p.message


# --- refused images ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(2000),
        b"",
        b"hello, world\n" * 10,
        b"\xff\xd8\xff",  # a JPEG's first bytes and nothing else
        b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing else
    ],
    ids=["random", "empty", "text", "jpeg-magic-only", "png-signature-only"],
)
def test_undecodable(data: bytes) -> None:
    p = _problem(data)
    assert p.rule == "undecodable_image"
    assert p.message


def test_png_decompression_bomb_is_refused_without_allocating() -> None:
    data = _png_header_only(50_000, 50_000)
    assert len(data) < 200
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    p = _problem(data)
    elapsed = time.perf_counter() - start
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert p.rule == "decompression_bomb"
    assert "too many pixels" in p.message
    assert elapsed < 1.0
    assert grown_kib < 100 * 1024  # 7.5 GB would be needed to decode it


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_png_between_one_and_two_times_the_limit_is_refused() -> None:
    # Pillow itself only warns up to twice MAX_IMAGE_PIXELS; visionloop refuses from 1×.
    side = int((Image.MAX_IMAGE_PIXELS or 0) ** 0.5) + 100
    start = time.perf_counter()
    p = _problem(_png_header_only(side, side))
    assert time.perf_counter() - start < 1.0
    assert p.rule == "decompression_bomb"
    assert f"{side}×{side}" in p.message
    assert "over the limit" in p.message


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA", "PCX"])
def test_unsupported_format(fmt: str) -> None:
    assert fmt not in SUPPORTED_FORMATS
    p = _problem(_encode(Image.new("RGB", (16, 16)), fmt))
    assert p.rule == "unsupported_format"
    assert f"is a {fmt} image" in p.message
    assert "JPEG" in p.message and "PNG" in p.message  # lists what is supported


def test_image_problem_is_an_exception_with_rule_and_message() -> None:
    p = ImageProblem("truncated_image", "is cut short")
    assert isinstance(p, Exception)
    assert (p.rule, p.message) == ("truncated_image", "is cut short")


# --- format is decided by decoding, not by the file name -----------------------------------------


def test_format_comes_from_content_not_extension(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    png = _encode(Image.new("RGB", (30, 20), (1, 2, 3)), "PNG")
    jpeg = _encode(Image.new("RGB", (20, 10), (200, 2, 3)), "JPEG")
    (src / "photo.jpg").write_bytes(png)
    (src / "scan.png").write_bytes(jpeg)
    (src / "noext").write_bytes(_encode(Image.new("RGB", (12, 8), (5, 250, 3)), "BMP"))
    result = import_dataset(ws, src)
    assert (result.accepted, result.rejected, result.unlabeled) == (3, 0, 3)
    assert result.findings == []
    with ws.engine.connect() as conn:
        q = select(schema.items.c.name, schema.images.c.format, schema.images.c.width).join(
            schema.images, schema.items.c.image_oid == schema.images.c.oid
        )
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(q)}
    assert rows == {"photo.jpg": ("PNG", 30), "scan.png": ("JPEG", 20), "noext": ("BMP", 12)}
