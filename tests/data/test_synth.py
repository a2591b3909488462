"""Tests of the synthetic detection data generator (visionloop.data.synth)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import yaml
from PIL import Image

from visionloop.data.synth import DOMAINS, SYNTH_CLASSES, SynthSummary, generate, render_scene
from visionloop.errors import UsageError

# Object colours are saturated, backgrounds are muted: "object-like" = saturated pixels.
_LINE = re.compile(r"^(\d+) (\d\.\d{6}) (\d\.\d{6}) (\d\.\d{6}) (\d\.\d{6})$")
_NAME = re.compile(r"^(day|night|fog)_\d{6}_s\d+$")


def _saturated(img: Image.Image) -> npt.NDArray[np.bool_]:
    return np.asarray(img.convert("HSV"))[..., 1] > 115


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_labels(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _LINE.match(line)
        assert m, f"malformed label line {line!r} in {path.name}"
        rows.append((int(m[1]), float(m[2]), float(m[3]), float(m[4]), float(m[5])))
    return rows


def _pixel_boxes(rows: list[tuple[int, float, float, float, float]], size: int) -> list[tuple[int, ...]]:
    return [
        tuple(round(v * size) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        for _, cx, cy, w, h in rows
    ]


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_render_scene_boxes_are_valid(domain: str) -> None:
    for i in range(15):
        img, det = render_scene(np.random.default_rng(i), domain, 128)
        assert img.mode == "RGB" and img.size == (128, 128)
        assert 1 <= len(det) <= 6
        assert det.confidence is None
        assert set(det.class_id.tolist()) <= set(range(len(SYNTH_CLASSES)))
        xyxy = det.xyxy
        assert (xyxy[:, :2] >= 0).all() and (xyxy[:, 2:] <= 128).all()
        assert (xyxy[:, 2:] > xyxy[:, :2]).all()
        for a in range(len(det)):
            for b in range(a + 1, len(det)):
                lt = np.maximum(xyxy[a, :2], xyxy[b, :2])
                rb = np.minimum(xyxy[a, 2:], xyxy[b, 2:])
                inter = float(np.prod(np.clip(rb - lt, 0, None)))
                assert inter / (det.area[a] + det.area[b] - inter) < 0.3


def test_render_scene_boxes_are_tight_around_drawn_shapes() -> None:
    outside: list[float] = []
    for i in range(25):
        img, det = render_scene(np.random.default_rng(100 + i), "day", 160)
        sat = _saturated(img)
        boxes = det.xyxy.astype(int).tolist()
        others = np.zeros_like(sat)
        for x0, y0, x1, y1 in boxes:
            others[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = True
        for x0, y0, x1, y1 in boxes:
            inside = sat[y0:y1, x0:x1]
            assert inside.mean() > 0.35, "a box holds too few object pixels"
            # tight: the shape touches all four sides of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        outside.append(float(sat[~others].mean()))
    assert max(outside) < 0.05 and np.mean(outside) < 0.01, "saturated object pixels outside every box"


def test_render_scene_is_deterministic_per_generator_seed() -> None:
    a_img, a_det = render_scene(np.random.default_rng(5), "night", 96)
    b_img, b_det = render_scene(np.random.default_rng(5), "night", 96)
    c_img, _ = render_scene(np.random.default_rng(6), "night", 96)
    assert a_img.tobytes() == b_img.tobytes() and a_det.equals(b_det)
    assert a_img.tobytes() != c_img.tobytes()


def test_domains_really_differ() -> None:
    stats: dict[str, tuple[float, float, float]] = {}
    for domain in ("day", "night", "fog"):
        means, stds, blue = [], [], []
        for i in range(10):
            img, _ = render_scene(np.random.default_rng(i), domain, 128)
            luma = np.asarray(img.convert("L"), dtype=np.float64)
            rgb = np.asarray(img, dtype=np.float64)
            means.append(luma.mean())
            stds.append(luma.std())
            blue.append(rgb[..., 2].mean() - rgb[..., 0].mean())
        stats[domain] = (float(np.mean(means)), float(np.mean(stds)), float(np.mean(blue)))
    day, night, fog = stats["day"], stats["night"], stats["fog"]
    assert night[0] < day[0] - 50, stats  # night is much darker
    assert night[2] > day[2] + 10, stats  # and bluish
    assert fog[1] < 0.6 * day[1], stats  # fog has much lower contrast
    assert fog[0] > night[0] + 50, stats  # washed out, not dark


def test_generate_writes_well_formed_yolo_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    done: list[int] = []
    summary = generate(out, images=40, seed=3, size=96, progress=done.append)
    assert isinstance(summary, SynthSummary)
    assert done == list(range(1, 41))
    assert summary.out == out and summary.domain == "day" and summary.seed == 3 and summary.images == 40
    assert all(n > 0 for n in summary.images_per_split.values()), summary.images_per_split
    assert set(summary.images_per_split) == {"train", "val", "test"}

    meta = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert meta["path"] == "." and meta["names"] == list(SYNTH_CLASSES)
    assert (meta["train"], meta["val"], meta["test"]) == ("images/train", "images/val", "images/test")

    boxes_per_class = dict.fromkeys(SYNTH_CLASSES, 0)
    in_boxes, outside = [], []
    for split, count in summary.images_per_split.items():
        jpgs = sorted((out / "images" / split).iterdir())
        txts = sorted((out / "labels" / split).iterdir())
        assert len(jpgs) == len(txts) == count
        assert [p.stem for p in jpgs] == [p.stem for p in txts]
        for jpg, txt in zip(jpgs, txts, strict=True):
            assert jpg.suffix == ".jpg" and txt.suffix == ".txt" and _NAME.match(jpg.stem)
            with Image.open(jpg) as im:
                assert im.format == "JPEG" and im.size == (96, 96)
                sat = _saturated(im)
            rows = _read_labels(txt)
            assert rows, "every synthetic scene has at least one object"
            covered = np.zeros_like(sat)
            for (cls, cx, cy, w, h), (x0, y0, x1, y1) in zip(rows, _pixel_boxes(rows, 96), strict=True):
                assert 0 <= cls < len(SYNTH_CLASSES)
                assert 0 < w <= 1 and 0 < h <= 1
                assert cx - w / 2 >= -1e-6 and cy - h / 2 >= -1e-6
                assert cx + w / 2 <= 1 + 1e-6 and cy + h / 2 <= 1 + 1e-6
                boxes_per_class[SYNTH_CLASSES[cls]] += 1
                in_boxes.append(sat[y0:y1, x0:x1].mean())
                covered[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = True
            outside.append(sat[~covered].mean())
    assert boxes_per_class == summary.boxes_per_class
    assert all(n > 0 for n in boxes_per_class.values())
    # the labelled boxes hold the drawn objects: saturated pixels inside, hardly any outside
    assert float(np.mean(in_boxes)) > 0.4 and min(in_boxes) > 0.2
    assert float(np.mean(outside)) < 0.01


def test_generate_is_byte_identical_per_seed(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", images=6, seed=7, domain="fog", size=96)
    b = generate(tmp_path / "b", images=6, seed=7, domain="fog", size=96)
    c = generate(tmp_path / "c", images=6, seed=8, domain="fog", size=96)
    files_a, files_b, files_c = _all_files(a.out), _all_files(b.out), _all_files(c.out)
    assert files_a == files_b
    assert a.images_per_split == b.images_per_split and a.boxes_per_class == b.boxes_per_class
    jpgs_a = sorted(v for k, v in files_a.items() if k.endswith(".jpg"))
    jpgs_c = sorted(v for k, v in files_c.items() if k.endswith(".jpg"))
    assert not set(jpgs_a) & set(jpgs_c), "a different seed must give different images"
    names_a = {Path(k).name for k in files_a if k.endswith(".jpg")}
    names_c = {Path(k).name for k in files_c if k.endswith(".jpg")}
    assert not names_a & names_c, "names of different seeds must not collide"
    assert all(n.startswith("fog_") and n.endswith("_s7.jpg") for n in names_a)


def test_generate_accepts_an_existing_empty_directory(tmp_path: Path) -> None:
    summary = generate(tmp_path, images=3, seed=0, domain="night", size=64)
    assert summary.images == 3
    assert sorted(summary.images_per_split.values()) == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"images": 0}, "0 images"),
        ({"images": -4}, "-4"),
        ({"domain": "dusk"}, "'dusk'"),
        ({"size": 32}, "32"),
        ({"seed": -1}, "-1"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "0.6"),
    ],
)
def test_generate_refuses_bad_arguments(tmp_path: Path, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"images": 5, "seed": 1, **kwargs}
    with pytest.raises(UsageError) as info:
        generate(tmp_path / "out", **args)  # type: ignore[arg-type]
    assert type(info.value) is UsageError
    assert needle in info.value.message
    assert not (tmp_path / "out").exists(), "nothing is written when the arguments are refused"


def test_generate_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        generate(tmp_path, images=2, seed=1, size=64)
    assert type(info.value) is UsageError
    assert str(tmp_path) in info.value.message
    assert info.value.fix is not None and "empty directory" in info.value.fix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(("domain", "size", "needle"), [("dawn", 128, "'dawn'"), ("day", 63, "63")])
def test_render_scene_refuses_bad_arguments(domain: str, size: int, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        render_scene(np.random.default_rng(0), domain, size)
    assert type(info.value) is UsageError
    assert needle in info.value.message
