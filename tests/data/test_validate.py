"""Tests of the box and size validation rules (pure functions, no I/O)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from visionloop.data.validate import (
    RULES,
    Finding,
    RawBox,
    check_size,
    finding,
    summarize,
    validate_boxes,
)

CLASSES = ["cell", "platelet"]
W, H = 100, 80
FILE = "Annotations/img1.xml"


def _run(*boxes: RawBox, tolerance: float = 2.0) -> tuple[list[Any], list[Finding]]:
    return validate_boxes(list(boxes), W, H, CLASSES, FILE, tolerance)


def _assert_well_formed(found: list[Finding]) -> None:
    for f in found:
        assert f.rule in RULES
        assert f.severity == RULES[f.rule][0]
        assert f.file == FILE


# --- one box, one outcome ------------------------------------------------------------------------

# (id, box, kept boxes, expected rules, message fragments)
CASES: list[tuple[str, RawBox, list[Any], list[str], list[str]]] = [
    ("good", RawBox(10, 20, 30, 40, "cell"), [(10.0, 20.0, 30.0, 40.0, "cell", False)], [], []),
    (
        "good-strings",  # VOC hands coordinates over as text
        RawBox("10", "20.5", "30", "40", "cell"),
        [(10.0, 20.5, 30.0, 40.0, "cell", False)],
        [],
        [],
    ),
    (
        "rounded-to-2-decimals",
        RawBox(10.123456, 20.005001, 30.999, 40, "cell"),
        [(10.12, 20.01, 31.0, 40.0, "cell", False)],
        [],
        [],
    ),
    ("zero-width", RawBox(10, 20, 10, 40, "cell"), [], ["degenerate_box"], ["width 0", "height 20"]),
    ("zero-height", RawBox(10, 20, 30, 20, "cell"), [], ["degenerate_box"], ["width 20", "height 0"]),
    ("negative-width", RawBox(30, 20, 10, 40, "cell"), [], ["degenerate_box"], ["width -20"]),
    ("negative-height", RawBox(10, 40, 30, 20, "cell"), [], ["degenerate_box"], ["height -20"]),
    ("nan", RawBox(float("nan"), 20, 30, 40, "cell"), [], ["invalid_box"], ["not finite numbers", "nan"]),
    ("nan-string", RawBox("nan", 20, 30, 40, "cell"), [], ["invalid_box"], ["not finite numbers"]),
    ("inf", RawBox(10, 20, float("inf"), 40, "cell"), [], ["invalid_box"], ["not finite numbers", "inf"]),
    ("-inf", RawBox(10, float("-inf"), 30, 40, "cell"), [], ["invalid_box"], ["not finite numbers"]),
    ("text", RawBox("ten", 20, 30, 40, "cell"), [], ["invalid_box"], ["'ten'"]),
    ("empty-text", RawBox("", 20, 30, 40, "cell"), [], ["invalid_box"], ["not finite numbers"]),
    ("none", RawBox(None, 20, 30, 40, "cell"), [], ["invalid_box"], ["None"]),
    ("bool", RawBox(True, 20, 30, 40, "cell"), [], ["invalid_box"], ["True"]),
    ("list", RawBox([10], 20, 30, 40, "cell"), [], ["invalid_box"], ["not finite numbers"]),
    (
        "overshoot-within-tolerance",
        RawBox(-1.5, 20, 101, 40, "cell"),
        [(0.0, 20.0, 100.0, 40.0, "cell", False)],
        ["box_clipped"],
        ["overshot the image by 1.5 px", "clipped"],
    ),
    (
        "overshoot-exactly-tolerance",
        RawBox(10, 20, 30, 82, "cell"),
        [(10.0, 20.0, 30.0, 80.0, "cell", False)],
        ["box_clipped"],
        ["by 2 px"],
    ),
    (
        "float-noise-clipped-silently",
        RawBox(-0.004, 20, 100.009, 80.001, "cell"),
        [(0.0, 20.0, 100.0, 80.0, "cell", False)],
        [],
        [],
    ),
    (
        "beyond-tolerance-right",
        RawBox(10, 20, 103, 40, "cell"),
        [],
        ["box_out_of_bounds"],
        ["reaches 3 px outside", "100×80 image", "tolerance 2 px"],
    ),
    (
        "beyond-tolerance-top",
        RawBox(10, -2.5, 30, 40, "cell"),
        [],
        ["box_out_of_bounds"],
        ["reaches 2.5 px outside"],
    ),
    (
        "far-outside",
        RawBox(500, 500, 600, 600, "cell"),
        [],
        ["box_out_of_bounds"],
        ["[500, 500, 600, 600]"],
    ),
    (
        "unknown-class",
        RawBox(10, 20, 30, 40, "dog"),
        [],
        ["unknown_class"],
        ["'dog'", "['cell', 'platelet']"],
    ),
    (
        "yolo-index-out-of-range",
        RawBox(0.1, 0.1, 0.2, 0.2, "<class index 7>", normalized=True),
        [],
        ["unknown_class"],
        ["'<class index 7>'"],
    ),
    (
        "normalized",
        RawBox(0.1, 0.25, 0.5, 0.75, "platelet", normalized=True),
        [(10.0, 20.0, 50.0, 60.0, "platelet", False)],
        [],
        [],
    ),
    (
        "normalized-full-image",
        RawBox(0.0, 0.0, 1.0, 1.0, "cell", normalized=True),
        [(0.0, 0.0, 100.0, 80.0, "cell", False)],
        [],
        [],
    ),
    (
        "normalized-overshoot-scaled-before-tolerance",  # 0.03 of 100 px is 3 px: beyond 2 px
        RawBox(-0.03, 0.1, 0.5, 0.5, "cell", normalized=True),
        [],
        ["box_out_of_bounds"],
        ["reaches 3 px outside"],
    ),
    (
        "crowd-kept",
        RawBox(10, 20, 30, 40, "cell", crowd=True),
        [(10.0, 20.0, 30.0, 40.0, "cell", True)],
        [],
        [],
    ),
]


@pytest.mark.parametrize(
    ("box", "kept", "rules", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_box(box: RawBox, kept: list[Any], rules: list[str], fragments: list[str]) -> None:
    got, found = _run(box)
    assert len(got) == len(kept)
    for g, k in zip(got, kept, strict=True):
        assert g[:4] == pytest.approx(k[:4], abs=1e-9)
        assert g[4:] == k[4:]
    assert [f.rule for f in found] == rules
    _assert_well_formed(found)
    for f in found:
        assert f.message.startswith(f"box 1 ({box.cls})")  # the message names the box
        for fragment in fragments:
            assert fragment in f.message


@pytest.mark.parametrize(
    ("rule", "severity"),
    [
        ("degenerate_box", "dropped"),
        ("invalid_box", "dropped"),
        ("box_out_of_bounds", "dropped"),
        ("unknown_class", "dropped"),
        ("duplicate_box", "dropped"),
        ("box_clipped", "warning"),
        ("size_mismatch", "error"),
    ],
)
def test_rule_severities(rule: str, severity: str) -> None:
    assert RULES[rule][0] == severity
    assert finding(rule, "f", "m") == Finding(rule, RULES[rule][0], "f", "m")


def test_every_rule_has_a_severity_and_a_legend() -> None:
    for rule, (severity, legend) in RULES.items():
        assert severity in ("error", "dropped", "warning"), rule
        assert legend.strip(), rule


# --- several boxes on one image ------------------------------------------------------------------


def test_exact_duplicate_dropped_once_kept_once() -> None:
    kept, found = _run(
        RawBox(10, 20, 30, 40, "cell"),
        RawBox(10.0, 20.0, 30.0, 40.0, "cell"),
        RawBox(10, 20, 30, 40, "platelet"),  # same box, other class: not a duplicate
    )
    assert kept == [(10.0, 20.0, 30.0, 40.0, "cell", False), (10.0, 20.0, 30.0, 40.0, "platelet", False)]
    assert [f.rule for f in found] == ["duplicate_box"]
    assert found[0].message.startswith("box 2 (cell)")
    assert "repeats an earlier box" in found[0].message
    _assert_well_formed(found)


def test_duplicate_after_clipping() -> None:
    kept, found = _run(RawBox(-1, 20, 30, 40, "cell"), RawBox(0, 20, 30, 40, "cell"))
    assert kept == [(0.0, 20.0, 30.0, 40.0, "cell", False)]
    assert [f.rule for f in found] == ["box_clipped", "duplicate_box"]
    assert found[1].message.startswith("box 2 (cell)")


def test_findings_name_each_box_by_position() -> None:
    kept, found = _run(
        RawBox(10, 20, 30, 40, "cell"),
        RawBox(10, 20, 10, 40, "cell"),
        RawBox("x", 20, 30, 40, "platelet"),
        RawBox(10, 20, 30, 40, "dog"),
        RawBox(10, 20, 300, 40, "cell"),
        RawBox(50, 50, 60, 60, "platelet", crowd=True),
    )
    assert kept == [(10.0, 20.0, 30.0, 40.0, "cell", False), (50.0, 50.0, 60.0, 60.0, "platelet", True)]
    assert [(f.rule, f.message.split(" ", 3)[:3]) for f in found] == [
        ("degenerate_box", ["box", "2", "(cell)"]),
        ("invalid_box", ["box", "3", "(platelet)"]),
        ("unknown_class", ["box", "4", "(dog)"]),
        ("box_out_of_bounds", ["box", "5", "(cell)"]),
    ]
    _assert_well_formed(found)


def test_tolerance_is_a_parameter() -> None:
    box = RawBox(10, 20, 101, 40, "cell")
    assert [f.rule for f in _run(box, tolerance=0)[1]] == ["box_out_of_bounds"]
    assert [f.rule for f in _run(box, tolerance=1)[1]] == ["box_clipped"]
    assert "tolerance 0 px" in _run(box, tolerance=0)[1][0].message


def test_no_boxes() -> None:
    assert _run() == ([], [])


def test_kept_values_are_plain_floats() -> None:
    (box,), _ = _run(RawBox(10, 20, 30, 40, "cell"))
    assert all(type(v) is float and math.isfinite(v) for v in box[:4])
    assert type(box[5]) is bool


# --- image size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "actual"),
    [
        ((640, 480), (640, 480)),
        ([640, 480], (640, 480)),  # a list from JSON
        (None, (640, 480)),
        ((0, 0), (640, 480)),
        ((640, 0), (640, 480)),
        ((0, 480), (640, 480)),
    ],
    ids=["match", "match-list", "none", "zero", "zero-height", "zero-width"],
)
def test_check_size_no_finding(declared: Any, actual: tuple[int, int]) -> None:
    assert check_size(declared, actual, FILE) is None


@pytest.mark.parametrize(
    ("declared", "actual", "text"),
    [
        ((640, 480), (480, 640), "the annotation says 640×480 but the image is 480×640"),
        ((641, 480), (640, 480), "the annotation says 641×480 but the image is 640×480"),
        ((640, 481), (640, 480), "the annotation says 640×481 but the image is 640×480"),
    ],
    ids=["rotated", "width", "height"],
)
def test_check_size_mismatch(declared: tuple[int, int], actual: tuple[int, int], text: str) -> None:
    f = check_size(declared, actual, FILE)
    assert f is not None
    assert (f.rule, f.severity, f.file) == ("size_mismatch", "error", FILE)
    assert text in f.message
    assert "misplaced" in f.message


# --- summary -------------------------------------------------------------------------------------


def test_summarize_counts_per_severity_and_rule() -> None:
    found = [
        finding("box_clipped", "a", "m"),
        finding("degenerate_box", "a", "m"),
        finding("box_clipped", "b", "m"),
        finding("truncated_image", "c", "m"),
        finding("degenerate_box", "d", "m"),
        finding("degenerate_box", "d", "m"),
    ]
    assert summarize(found) == {
        "error": {"truncated_image": 1},
        "dropped": {"degenerate_box": 3},
        "warning": {"box_clipped": 2},
    }


def test_summarize_empty_has_all_severities() -> None:
    assert summarize([]) == {"error": {}, "dropped": {}, "warning": {}}


def test_summarize_validate_output() -> None:
    _, found = _run(
        RawBox(10, 20, 10, 40, "cell"),
        RawBox(None, 1, 2, 3, "cell"),
        RawBox(-1, 20, 30, 40, "cell"),
    )
    assert summarize(found) == {
        "error": {},
        "dropped": {"degenerate_box": 1, "invalid_box": 1},
        "warning": {"box_clipped": 1},
    }


def test_finding_to_dict() -> None:
    f = finding("unknown_class", "x.xml", "box 1 (dog) has class 'dog'")
    assert f.to_dict() == {
        "rule": "unknown_class",
        "severity": "dropped",
        "file": "x.xml",
        "message": "box 1 (dog) has class 'dog'",
    }


def test_finding_unknown_rule_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        finding("no_such_rule", "f", "m")
