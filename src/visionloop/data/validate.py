"""Validation rules: pure functions, one named rule each.

Every finding carries the rule, its severity, the file it is about and a
sentence a person understands. Severities:

- ``error``   the image (and its boxes) is not imported;
- ``dropped`` one box is not imported, the image is;
- ``warning`` imported as it is (or repaired, e.g. a clipped box), noted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "dropped", "warning"]

#: Every rule, its severity and what it means: the import report's legend.
RULES: dict[str, tuple[Severity, str]] = {
    "undecodable_image": ("error", "the file is not an image any decoder recognises"),
    "truncated_image": ("error", "the image data stops before the image is complete"),
    "jpeg_missing_end_marker": ("warning", "a JPEG that decodes but lacks its end marker"),
    "unsupported_format": ("error", "an image format visionloop does not train on"),
    "decompression_bomb": ("error", "the image declares more pixels than is safe to decode"),
    "size_mismatch": ("error", "the annotation's image size differs from the real image size"),
    "degenerate_box": ("dropped", "a box with zero or negative width or height"),
    "box_out_of_bounds": ("dropped", "a box reaching outside the image beyond the tolerance"),
    "box_clipped": ("warning", "a box overshooting the image within the tolerance, clipped"),
    "invalid_box": ("dropped", "a box whose coordinates are missing, not numbers, NaN or infinite"),
    "unknown_class": ("dropped", "a box whose class is not in the dataset's class list"),
    "duplicate_image": ("warning", "the same image content appears more than once; imported once"),
    "duplicate_box": ("dropped", "the same box with the same class appears twice on one image"),
    "annotation_without_image": ("error", "an annotation whose image is not there"),
    "image_file_missing": ("error", "an image listed by the annotations is missing from disk"),
    "invalid_annotation": ("error", "an annotation file that cannot be parsed"),
    "unsafe_annotation": ("error", "an annotation file with XML entities or external references"),
    "unsafe_path": ("error", "a file name that points outside the dataset"),
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    file: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finding(rule: str, file: str, message: str) -> Finding:
    """A finding for ``rule`` with the rule's severity."""
    return Finding(rule, RULES[rule][0], file, message)


@dataclass(frozen=True)
class RawBox:
    """A box as a source declares it: maybe invalid, maybe normalized (YOLO)."""

    x1: Any
    y1: Any
    x2: Any
    y2: Any
    cls: str
    crowd: bool = False
    normalized: bool = False


Box = tuple[float, float, float, float, str, bool]


def _finite(values: Iterable[Any]) -> list[float] | None:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            return None
        try:
            f = float(v)
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return out


def check_size(declared: tuple[int, int] | None, actual: tuple[int, int], file: str) -> Finding | None:
    """``size_mismatch`` when an annotation declares another size (0 or absent means unknown)."""
    if not declared or not declared[0] or not declared[1] or tuple(declared) == tuple(actual):
        return None
    return finding(
        "size_mismatch",
        file,
        f"the annotation says {declared[0]}×{declared[1]} but the image is "
        f"{actual[0]}×{actual[1]}; its boxes would be misplaced",
    )


def validate_boxes(
    boxes: Sequence[RawBox],
    width: int,
    height: int,
    classes: Sequence[str],
    file: str,
    tolerance: float = 2.0,
) -> tuple[list[Box], list[Finding]]:
    """Check every box of one image; return the kept boxes (clipped) and the findings."""
    kept: list[Box] = []
    found: list[Finding] = []
    seen: set[tuple[float, float, float, float, str]] = set()
    known = set(classes)
    for i, b in enumerate(boxes, 1):
        where = f"box {i} ({b.cls})"
        coords = _finite((b.x1, b.y1, b.x2, b.y2))
        if coords is None:
            found.append(
                finding(
                    "invalid_box",
                    file,
                    f"{where} has coordinates that are not finite numbers: {[b.x1, b.y1, b.x2, b.y2]}",
                )
            )
            continue
        x1, y1, x2, y2 = coords
        if b.normalized:
            x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
        if b.cls not in known:
            found.append(
                finding("unknown_class", file, f"{where} has class {b.cls!r}, not one of {list(classes)}")
            )
            continue
        if x2 <= x1 or y2 <= y1:
            found.append(
                finding(
                    "degenerate_box",
                    file,
                    f"{where} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] has width {x2 - x1:g} and height "
                    f"{y2 - y1:g}; a box needs both above zero",
                )
            )
            continue
        over = max(-x1, -y1, x2 - width, y2 - height)
        if over > tolerance:
            found.append(
                finding(
                    "box_out_of_bounds",
                    file,
                    f"{where} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] reaches {over:g} px outside the "
                    f"{width}×{height} image (tolerance {tolerance:g} px)",
                )
            )
            continue
        if over > 0:
            x1, y1 = max(x1, 0.0), max(y1, 0.0)
            x2, y2 = min(x2, float(width)), min(y2, float(height))
            if over > 0.01:  # below that it is float rounding from normalized formats, not a finding
                found.append(
                    finding("box_clipped", file, f"{where} overshot the image by {over:g} px and was clipped")
                )
        key = (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2), b.cls)
        if key in seen:
            found.append(finding("duplicate_box", file, f"{where} repeats an earlier box exactly; kept once"))
            continue
        seen.add(key)
        kept.append((key[0], key[1], key[2], key[3], b.cls, bool(b.crowd)))
    return kept, found


def summarize(findings: Iterable[Finding]) -> dict[str, dict[str, int]]:
    """Counts per severity and rule, for the summary table and report."""
    out: dict[str, dict[str, int]] = {"error": {}, "dropped": {}, "warning": {}}
    for f in findings:
        out[f.severity][f.rule] = out[f.severity].get(f.rule, 0) + 1
    return out
