"""Synthetic object-detection data: simple coloured shapes on cluttered backgrounds.

Demos and tests run on this instead of a download. Scenes come in named
*domains* (``day``, ``night``, ``fog``); a model trained on ``day`` only does
noticeably worse on ``night``, which is how production drift is simulated.

Everything is a pure function of its arguments: one :class:`numpy.random.Generator`
per image, seeded from ``(seed, domain, size, index)``, and Pillow drawing —
the same inputs give byte-identical files.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import yaml
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from visionloop.errors import UsageError
from visionloop.types import Detections

__all__ = ["DOMAINS", "SYNTH_CLASSES", "SynthDomain", "SynthSummary", "generate", "render_scene"]

SYNTH_CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "cross")
# Hue range (degrees) per class: red/orange discs, blue squares, green triangles, magenta crosses.
_CLASS_HUES: tuple[tuple[float, float], ...] = ((-15.0, 20.0), (200.0, 235.0), (95.0, 140.0), (285.0, 320.0))
SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_SIZE = 64
_MAX_OBJECTS = 6
_GAP = 2  # pixels kept free between object boxes (so boxes never overlap: IoU 0)

Range = tuple[float, float]


@dataclass(frozen=True)
class SynthDomain:
    """How one domain looks. Ranges are ``(low, high)``, sampled per image."""

    name: str
    brightness: Range  # multiplier on all pixels
    contrast: Range  # stretch around the image mean
    tint: tuple[float, float, float]  # per-channel gain (R, G, B)
    bg_saturation: Range  # background palette (HSV); objects are always saturated
    bg_value: Range
    texture: Range  # amplitude of the smooth background texture (0-255 scale)
    clutter: tuple[int, int]  # number of distractor blobs and lines
    noise: Range  # sensor noise sigma (0-255 scale)
    haze: Range  # blend fraction towards ``haze_color``
    haze_color: tuple[int, int, int]
    blur: Range  # blur strength: downscale factor - 1 at size 320 (scaled with size)
    scale: Range  # object side as a fraction of the image side


DOMAINS: Mapping[str, SynthDomain] = MappingProxyType(
    {
        "day": SynthDomain(
            "day", (0.92, 1.08), (0.95, 1.1), (1.0, 1.0, 1.0), (0.05, 0.35), (0.45, 0.92), (8.0, 22.0),
            (4, 12), (1.5, 4.0), (0.0, 0.0), (0, 0, 0), (0.0, 0.0), (0.09, 0.25),
        ),
        "night": SynthDomain(
            "night", (0.42, 0.55), (0.7, 0.85), (0.72, 0.85, 1.15), (0.05, 0.3), (0.35, 0.8), (6.0, 16.0),
            (4, 12), (8.0, 13.0), (0.0, 0.0), (0, 0, 0), (0.0, 0.6), (0.06, 0.16),
        ),
        "fog": SynthDomain(
            "fog", (1.0, 1.05), (0.8, 0.9), (0.97, 1.0, 1.03), (0.03, 0.25), (0.5, 0.9), (6.0, 16.0),
            (3, 10), (1.5, 3.5), (0.42, 0.58), (206, 211, 216), (1.0, 2.0), (0.08, 0.22),
        ),
    }
)  # fmt: skip


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote."""

    out: Path
    domain: str
    seed: int
    size: int
    images_per_split: dict[str, int]
    boxes_per_class: dict[str, int]

    @property
    def images(self) -> int:
        """Total number of images over all splits."""
        return sum(self.images_per_split.values())


def _check_domain(domain: str) -> SynthDomain:
    if domain not in DOMAINS:
        raise UsageError(
            f"unknown synthetic domain {domain!r}", where="domain", fix=f"use one of: {', '.join(DOMAINS)}"
        )
    return DOMAINS[domain]


def _check_size(size: int) -> None:
    if size < MIN_SIZE:
        raise UsageError(
            f"image size {size} is too small", where="size", fix=f"use a size of at least {MIN_SIZE}"
        )


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _hsv(rng: np.random.Generator, hue: Range, sat: Range, val: Range) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((_u(rng, hue) / 360.0) % 1.0, _u(rng, sat), _u(rng, val))
    return round(r * 255), round(g * 255), round(b * 255)


def _background(rng: np.random.Generator, d: SynthDomain, size: int) -> Image.Image:
    """Two-colour gradient + smooth texture (drawn small, upscaled) + muted blobs and lines."""
    c0 = np.array(_hsv(rng, (0, 360), d.bg_saturation, d.bg_value), dtype=np.float32)
    c1 = np.array(_hsv(rng, (0, 360), d.bg_saturation, d.bg_value), dtype=np.float32)
    grid = int(rng.integers(4, 12))
    angle = rng.uniform(0, 2 * math.pi)
    axis = np.linspace(0.0, 1.0, grid, dtype=np.float32)
    t = axis[None, :] * math.cos(angle) + axis[:, None] * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    amp = _u(rng, d.texture)  # mostly brightness texture, a little colour
    tex = rng.normal(0.0, amp, (grid, grid, 1)) + rng.normal(0.0, amp / 3, (grid, grid, 3))
    low = c0 + t[..., None] * (c1 - c0) + tex
    small = Image.fromarray(np.clip(low, 0, 255).astype(np.uint8))
    img = small.resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(d.clutter[0], d.clutter[1] + 1))):
        color = _hsv(rng, (0, 360), d.bg_saturation, d.bg_value)
        x, y = rng.uniform(-0.1, 1.1, 2) * size
        if rng.random() < 0.55:
            rx, ry = rng.uniform(0.03, 0.18, 2) * size
            draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=color)
        else:
            x2, y2 = rng.uniform(-0.1, 1.1, 2) * size
            draw.line([(x, y), (x2, y2)], fill=color, width=int(rng.integers(1, max(2, size // 100) + 1)))
    return img


def _polygon(cls: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Unit-radius outline of a square, triangle or cross, randomly rotated."""
    if cls == 1:
        pts = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
        rot = rng.uniform(-25, 25)
    elif cls == 2:
        pts = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
        rot = rng.uniform(0, 360)
    else:
        a, b = 0.95, 0.3
        pts = [(-a, -b), (-b, -b), (-b, -a), (b, -a), (b, -b), (a, -b)]
        pts += [(a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b)]
        rot = rng.uniform(-25, 25)
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    return [(x * c - y * s, x * s + y * c) for x, y in pts]


def _shape_mask(rng: np.random.Generator, cls: int, side: int) -> Image.Image:
    """An ``L`` mask of one shape, cropped tight to its drawn pixels."""
    canvas = int(side * 1.3) + 4
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    c, r = canvas / 2, side / 2
    if cls == 0:
        rx, ry = r, r * rng.uniform(0.85, 1.0)
        if rng.random() < 0.5:
            rx, ry = ry, rx
        draw.ellipse([c - rx, c - ry, c + rx, c + ry], fill=255)
    else:
        draw.polygon([(c + x * r, c + y * r) for x, y in _polygon(cls, rng)], fill=255)
    bbox = mask.getbbox()
    return mask.crop(bbox) if bbox else mask


def _apply_domain(rng: np.random.Generator, img: Image.Image, d: SynthDomain, size: int) -> Image.Image:
    """Contrast, brightness, tint and haze (one per-channel lookup table), then blur and noise."""
    mean = float(np.asarray(img)[::4, ::4].mean())
    contrast, gain, haze = _u(rng, d.contrast), _u(rng, d.brightness), _u(rng, d.haze)
    levels = np.arange(256, dtype=np.float64)
    lut: list[int] = []
    for tint, haze_level in zip(d.tint, d.haze_color, strict=True):
        channel = ((levels - mean) * contrast + mean) * gain * tint * (1 - haze) + haze_level * haze
        lut += np.clip(np.rint(channel), 0, 255).astype(np.int64).tolist()
    out = img.point(lut)
    factor = 1 + _u(rng, d.blur) * size / 320  # blur by down- and upscaling: cheap, looks like haze
    if factor >= 1.3:
        small = max(8, round(size / factor))
        out = out.resize((small, small), Image.Resampling.BOX).resize((size, size), Image.Resampling.BILINEAR)
    # Uniform noise, sigma = k / sqrt(12): random bytes mapped to [0, k) and added with an offset of -k/2.
    k = max(1, round(_u(rng, d.noise) * math.sqrt(12)))
    noise = Image.frombytes("RGB", (size, size), rng.bytes(size * size * 3)).point(lambda v: v * k // 256)
    return ImageChops.add(out, noise, 1.0, -(k // 2))


def render_scene(rng: np.random.Generator, domain: str, size: int) -> tuple[Image.Image, Detections]:
    """Render one ``size`` x ``size`` RGB scene of 1-6 shapes in ``domain``.

    Boxes are tight ``xyxy`` pixel boxes around each drawn shape (right/bottom
    exclusive), inside the image and pairwise disjoint; class ids index
    :data:`SYNTH_CLASSES`. Raises :class:`UsageError` for an unknown domain or
    a size below 64.
    """
    d = _check_domain(domain)
    _check_size(size)
    img = _background(rng, d, size)
    wanted = int(rng.integers(1, _MAX_OBJECTS + 1))
    boxes: list[tuple[int, int, int, int]] = []
    classes: list[int] = []
    for _ in range(wanted * 15):
        if len(boxes) == wanted:
            break
        cls = int(rng.integers(len(SYNTH_CLASSES)))
        mask = _shape_mask(rng, cls, max(8, round(_u(rng, d.scale) * size)))
        w, h = mask.size
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        box = (x, y, x + w, y + h)
        if any(
            box[0] < b[2] + _GAP and b[0] < box[2] + _GAP and box[1] < b[3] + _GAP and b[1] < box[3] + _GAP
            for b in boxes
        ):
            continue
        fill = _hsv(rng, _CLASS_HUES[cls], (0.6, 0.95), (0.62, 0.95))
        edge = tuple(round(v * 0.55) for v in fill)
        img.paste(edge, box, mask)
        img.paste(fill, box, mask.filter(ImageFilter.MinFilter(3 if max(w, h) < 48 else 5)))
        boxes.append(box)
        classes.append(cls)
    img = _apply_domain(rng, img, d, size)
    return img, Detections(
        np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(classes, dtype=np.int64)
    )


def _assign_splits(images: int, seed: int, code: int, val_fraction: float, test_fraction: float) -> list[str]:
    """A deterministic split per image; every split with a positive fraction is non-empty from 3 images."""
    n_val, n_test = round(images * val_fraction), round(images * test_fraction)
    if images >= 3:
        n_val = max(n_val, 1) if val_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
    while n_val + n_test >= images and n_val + n_test > 0:
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng([seed, code, 0x5B117]).permutation(images)
    split = ["train"] * images
    for rank, i in enumerate(order.tolist()):
        if rank < n_val:
            split[i] = "val"
        elif rank < n_val + n_test:
            split[i] = "test"
    return split


def _yolo_lines(det: Detections, size: int) -> str:
    lines = []
    for (x0, y0, x1, y1), cls in zip(det.xyxy.tolist(), det.class_id.tolist(), strict=True):
        cx, cy, w, h = (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def generate(
    out: Path,
    *,
    images: int,
    seed: int,
    domain: str = "day",
    size: int = 320,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    progress: Callable[[int], None] | None = None,
) -> SynthSummary:
    """Write a YOLO-format dataset of ``images`` synthetic scenes to the empty directory ``out``.

    Layout: ``images/{train,val,test}/<domain>_<index:06d>_s<seed>.jpg`` (JPEG
    quality 90), matching ``labels/.../*.txt`` (``class cx cy w h``, normalized,
    6 decimals) and ``data.yaml``. Deterministic: the same arguments give
    byte-identical files. ``progress`` is called with the number of images done.
    Raises :class:`UsageError` for ``images < 1``, a negative seed, an unknown
    domain, ``size < 64``, bad fractions, or an ``out`` that exists and is not
    an empty directory.
    """
    if images < 1:
        raise UsageError(f"cannot generate {images} images", where="images", fix="ask for at least 1 image")
    if seed < 0:
        raise UsageError(f"seed {seed} is negative", where="seed", fix="use a seed of 0 or more")
    _check_domain(domain)
    _check_size(size)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UsageError(
            f"split fractions val={val_fraction} test={test_fraction} are invalid",
            where="val_fraction/test_fraction",
            fix="use fractions in [0, 1) that sum to less than 1",
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"output directory {str(out)!r} is not empty", where=str(out), fix="choose an empty directory"
        )
    for kind in ("images", "labels"):
        for split in SPLITS:
            (out / kind / split).mkdir(parents=True, exist_ok=True)
    code = zlib.crc32(domain.encode())
    splits = _assign_splits(images, seed, code, val_fraction, test_fraction)
    per_split = dict.fromkeys(SPLITS, 0)
    per_class = dict.fromkeys(SYNTH_CLASSES, 0)
    for i in range(images):
        img, det = render_scene(np.random.default_rng([seed, code, size, i]), domain, size)
        name, split = f"{domain}_{i:06d}_s{seed}", splits[i]
        img.save(out / "images" / split / f"{name}.jpg", format="JPEG", quality=90)
        (out / "labels" / split / f"{name}.txt").write_text(_yolo_lines(det, size), encoding="utf-8")
        per_split[split] += 1
        for cls in det.class_id.tolist():
            per_class[SYNTH_CLASSES[cls]] += 1
        if progress is not None:
            progress(i + 1)
    meta: dict[str, object] = {"path": ".", **{split: f"images/{split}" for split in SPLITS}}
    meta |= {"nc": len(SYNTH_CLASSES), "names": list(SYNTH_CLASSES)}
    (out / "data.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    return SynthSummary(out, domain, seed, size, per_split, per_class)
