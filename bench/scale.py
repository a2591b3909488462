"""Scale: snapshot and diff of a 200,000-image workspace, and the memory they take.

1. Build (reported, not a target): tiny synthetic images (8x8 PNGs, each distinct, 1-3
   labeled boxes each) are written as YOLO folders of ``--batch-size`` images and imported
   with ``import_dataset``, batch after batch, in one child process.
2. Measure (one fresh child process, its ``ru_maxrss`` is the peak memory):
   ``snapshot`` → ``import_dataset`` of a small YOLO folder that relabels 0.5% of the
   items and adds 0.5% new ones (1% in all) → ``snapshot`` → ``diff_versions``.

Targets: snapshot ≤ 10 s, diff ≤ 5 s, peak memory of the measuring process ≤ 1 GiB.

Run: ``.venv/bin/python bench/scale.py`` (``--images 20000`` for a quick check). Results
are printed and written to ``bench/results/scale.json``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import (
    busy_warning,
    child_env,
    code_state,
    fail,
    gib,
    machine,
    run_measured,
    verdict,
    write_results,
)

TARGET_SNAPSHOT_S = 10.0
TARGET_DIFF_S = 5.0
TARGET_PEAK_BYTES = 2**30
CLASSES = ("car", "person", "bike", "dog")
SIDE = 8

# Imports every batch folder, one after the other, into an existing workspace.
BUILD_RUNNER = """
import json, sys, time
from visionloop.workspace import open_workspace
from visionloop.data.ingest import import_dataset
ws = open_workspace(sys.argv[1])
batches = []
for folder in sys.argv[3:]:
    t = time.perf_counter()
    r = import_dataset(ws, folder)
    batches.append({"folder": folder, "seconds": time.perf_counter() - t, "format": r.format,
                    "scanned": r.scanned, "accepted": r.accepted, "new": r.new, "rejected": r.rejected,
                    "findings": len(r.findings)})
ws.close()
with open(sys.argv[2], "w") as f:
    json.dump({"batches": batches}, f)
"""

# The measured process: snapshot, a 1% change through import_dataset, snapshot, diff.
MEASURE_RUNNER = """
import json, resource, sys, time
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
out = {}
t = time.perf_counter()
from visionloop.workspace import open_workspace
from visionloop.data.ingest import import_dataset
from visionloop.data.versions import snapshot, diff_versions
ws = open_workspace(sys.argv[1])
out["open"] = {"seconds": time.perf_counter() - t, "rss_bytes": rss(), "peak_rss_bytes": peak()}
t = time.perf_counter()
v1, created1 = snapshot(ws, "scale: base")
out["snapshot_1"] = {"seconds": time.perf_counter() - t, "peak_rss_bytes": peak(), "created": created1,
                     "n_images": v1.n_images, "n_boxes": v1.n_boxes, "id": v1.id}
t = time.perf_counter()
r = import_dataset(ws, sys.argv[2])
out["change_import"] = {"seconds": time.perf_counter() - t, "peak_rss_bytes": peak(), "scanned": r.scanned,
                        "new": r.new, "relabeled": r.relabeled, "unchanged": r.unchanged,
                        "rejected": r.rejected}
t = time.perf_counter()
v2, created2 = snapshot(ws, "scale: 1% changed")
out["snapshot_2"] = {"seconds": time.perf_counter() - t, "peak_rss_bytes": peak(), "created": created2,
                     "n_images": v2.n_images, "n_boxes": v2.n_boxes, "id": v2.id}
t = time.perf_counter()
d = diff_versions(ws, v1.id, v2.id)
out["diff"] = {"seconds": time.perf_counter() - t, "peak_rss_bytes": peak(),
               **{k: d[k] for k in ("added", "removed", "relabeled", "moved_split", "unchanged")}}
out["manifest_bytes"] = ws.blobs.size(v2.id)
ws.close()
with open(sys.argv[3], "w") as f:
    json.dump(out, f)
"""


# -- synthetic data -------------------------------------------------------------------------------
def _png(index: int, rng: np.random.Generator) -> bytes:
    """An 8x8 RGB PNG whose first pixels encode ``index``: every index gives distinct bytes."""
    from PIL import Image

    px = rng.integers(0, 256, SIDE * SIDE * 3, dtype=np.uint8)
    px[:8] = np.frombuffer(index.to_bytes(8, "big"), dtype=np.uint8)
    buf = io.BytesIO()
    Image.frombytes("RGB", (SIDE, SIDE), px.tobytes()).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _boxes(rng: np.random.Generator) -> list[tuple[int, int, int, int, int]]:
    """1-3 distinct integer-pixel boxes ``(cls, x1, y1, x2, y2)`` inside the 8x8 image."""
    out: set[tuple[int, int, int, int, int]] = set()
    want = int(rng.integers(1, 4))
    while len(out) < want:
        x1, y1 = (int(v) for v in rng.integers(0, SIDE - 1, 2))
        x2, y2 = int(rng.integers(x1 + 1, SIDE + 1)), int(rng.integers(y1 + 1, SIDE + 1))
        out.add((int(rng.integers(len(CLASSES))), x1, y1, x2, y2))
    return sorted(out)


def _yolo(boxes: list[tuple[int, int, int, int, int]]) -> str:
    return "".join(
        f"{c} {(x1 + x2) / 2 / SIDE:.6f} {(y1 + y2) / 2 / SIDE:.6f} {(x2 - x1) / SIDE:.6f} {(y2 - y1) / SIDE:.6f}\n"
        for c, x1, y1, x2, y2 in boxes
    )


def _item(index: int, seed: int) -> tuple[bytes, list[tuple[int, int, int, int, int]]]:
    rng = np.random.default_rng([seed, index])
    return _png(index, rng), _boxes(rng)


def _new_folder(out: Path) -> tuple[Path, Path]:
    (out / "images" / "train").mkdir(parents=True)
    (out / "labels" / "train").mkdir(parents=True)
    names = "".join(f"  {i}: {c}\n" for i, c in enumerate(CLASSES))
    (out / "data.yaml").write_text(f"path: .\ntrain: images/train\nnames:\n{names}", encoding="utf-8")
    return out / "images" / "train", out / "labels" / "train"


def write_batch(out: Path, start: int, stop: int, seed: int) -> None:
    images, labels = _new_folder(out)
    for i in range(start, stop):
        data, boxes = _item(i, seed)
        (images / f"img_{i:07d}.png").write_bytes(data)
        (labels / f"img_{i:07d}.txt").write_text(_yolo(boxes), encoding="utf-8")


def write_changes(out: Path, n: int, relabel: int, add: int, seed: int) -> None:
    """``relabel`` existing images (same bytes) with changed labels, and ``add`` new images."""
    images, labels = _new_folder(out)
    step = max(1, n // max(1, relabel))
    for i in range(0, min(n, relabel * step), step):
        data, boxes = _item(i, seed)
        c, x1, y1, x2, y2 = boxes[0]
        boxes[0] = ((c + 1) % len(CLASSES), x1, y1, x2, y2)  # a different class: a different labels oid
        (images / f"relabel_{i:07d}.png").write_bytes(data)
        (labels / f"relabel_{i:07d}.txt").write_text(_yolo(boxes), encoding="utf-8")
    for i in range(n, n + add):
        data, boxes = _item(i, seed)
        (images / f"new_{i:07d}.png").write_bytes(data)
        (labels / f"new_{i:07d}.txt").write_text(_yolo(boxes), encoding="utf-8")


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200_000, help="images in the workspace (default 200,000)")
    ap.add_argument("--batch-size", type=int, default=20_000, help="images per build import (default 20,000)")
    ap.add_argument("--change", type=float, default=0.01, help="fraction relabeled + added (default 0.01)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="where temp data goes (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (workspace included)")
    args = ap.parse_args()
    if args.images < 100:
        fail("--images must be at least 100")

    from rich.console import Console
    from rich.table import Table

    from visionloop.workspace import init_workspace

    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    machine_at_start, code_at_start = machine(), code_state()
    if warning := busy_warning():
        console.print(f"[yellow]warning[/yellow]: {warning}")
    n = args.images
    n_change = max(2, round(n * args.change))
    relabel, add = n_change // 2, n_change - n_change // 2
    work = Path(tempfile.mkdtemp(prefix="vl-bench-scale-", dir=args.workdir))
    try:
        project = work / "project"
        project.mkdir()
        init_workspace(project, classes=CLASSES).close()

        console.print(f"Generating {n:,} images in batches of {args.batch_size:,} …")
        t = time.perf_counter()
        batches = []
        for b, start in enumerate(range(0, n, args.batch_size)):
            folder = work / f"batch-{b:03d}"
            write_batch(folder, start, min(n, start + args.batch_size), args.seed)
            batches.append(folder)
        generate_s = time.perf_counter() - t

        console.print(f"Importing {len(batches)} batches (build, not a target) …")
        build_json = work / "build.json"
        build = run_measured(
            [sys.executable, "-c", BUILD_RUNNER, str(project), str(build_json), *map(str, batches)],
            env=child_env(),
            result_file=build_json,
        )
        if not build.ok:
            fail(f"the build import failed (exit {build.returncode}):\n{build.stderr[-3000:]}")
        for folder in batches:
            shutil.rmtree(folder)
        accepted = sum(b["accepted"] for b in build.result["batches"])
        if accepted != n:
            fail(f"the build accepted {accepted} of {n} images: {build.result['batches']}")

        changes = work / "changes"
        write_changes(changes, n, relabel, add, args.seed)
        console.print(
            f"Measuring snapshot → import of {relabel:,} relabeled + {add:,} new → snapshot → diff …"
        )
        measure_json = work / "measure.json"
        m = run_measured(
            [sys.executable, "-c", MEASURE_RUNNER, str(project), str(changes), str(measure_json)],
            env=child_env(),
            result_file=measure_json,
        )
        if not m.ok:
            fail(f"the measured run failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
    finally:
        if args.keep:
            console.print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    r = m.result
    snap_s = max(r["snapshot_1"]["seconds"], r["snapshot_2"]["seconds"])
    checks = {
        "snapshot": snap_s <= TARGET_SNAPSHOT_S,
        "diff": r["diff"]["seconds"] <= TARGET_DIFF_S,
        "peak_rss": m.peak_rss_bytes <= TARGET_PEAK_BYTES,
    }
    expected = {"added": add, "removed": 0, "relabeled": relabel}
    correct = {k: r["diff"][k] == v for k, v in expected.items()}
    correct["snapshot_1_images"] = r["snapshot_1"]["n_images"] == n
    correct["snapshot_2_images"] = r["snapshot_2"]["n_images"] == n + add

    table = Table(title=f"Scale: {n:,} images (measuring process: fresh, one run)")
    for col in ("step", "seconds", "peak RSS so far", "target", "result"):
        table.add_column(col, justify="left" if col in ("step", "target") else "right")
    table.add_row("open workspace", f"{r['open']['seconds']:.2f}", gib(r["open"]["peak_rss_bytes"]), "", "")
    for key, label in (("snapshot_1", "snapshot (base)"), ("snapshot_2", "snapshot (after 1% change)")):
        s = r[key]
        table.add_row(
            label,
            f"{s['seconds']:.2f}",
            gib(s["peak_rss_bytes"]),
            f"≤ {TARGET_SNAPSHOT_S:.0f} s",
            verdict(s["seconds"] <= TARGET_SNAPSHOT_S),
        )
        if key == "snapshot_1":
            c = r["change_import"]
            table.add_row(
                f"import_dataset: {c['relabeled']:,} relabeled, {c['new']:,} new",
                f"{c['seconds']:.2f}",
                gib(c["peak_rss_bytes"]),
                "",
                "",
            )
    table.add_row(
        f"diff_versions (+{r['diff']['added']:,} / ~{r['diff']['relabeled']:,})",
        f"{r['diff']['seconds']:.2f}",
        gib(r["diff"]["peak_rss_bytes"]),
        f"≤ {TARGET_DIFF_S:.0f} s",
        verdict(checks["diff"]),
    )
    table.add_row(
        "peak memory of the measuring process",
        "",
        gib(m.peak_rss_bytes),
        f"≤ {gib(TARGET_PEAK_BYTES)}",
        verdict(checks["peak_rss"]),
    )
    console.print(table)
    build_s = sum(b["seconds"] for b in build.result["batches"])
    console.print(
        f"Build: generated {n:,} images in {generate_s:.1f} s; imported them in {len(batches)} batches in "
        f"{build.wall_s:.1f} s ({n / build_s:.0f} images/s in import_dataset), peak {gib(build.peak_rss_bytes)}. "
        f"Manifest {r['manifest_bytes'] / 2**20:.1f} MiB."
    )
    if not all(correct.values()):
        console.print(f"[red]unexpected counts[/red]: {correct} (diff {r['diff']})")

    if warning := busy_warning():
        console.print(f"[yellow]warning[/yellow]: {warning}")
    data = {
        "benchmark": "scale",
        "machine_at_start": machine_at_start,
        "machine_at_end": machine(),
        "code_at_start": code_at_start,
        "code_at_end": code_state(),
        "images": n,
        "changed": {"relabeled": relabel, "added": add},
        "targets": {
            "snapshot_s": TARGET_SNAPSHOT_S,
            "diff_s": TARGET_DIFF_S,
            "peak_rss_bytes": TARGET_PEAK_BYTES,
        },
        "build": {
            "generate_s": round(generate_s, 2),
            "import_wall_s": round(build.wall_s, 2),
            "import_dataset_s": round(build_s, 2),
            "images_per_s": round(n / build_s, 1),
            "peak_rss_bytes": build.peak_rss_bytes,
            "batches": build.result["batches"],
        },
        "measure": {"wall_s": round(m.wall_s, 2), "peak_rss_bytes": m.peak_rss_bytes, **r},
        "pass": checks,
        "counts_as_expected": correct,
    }
    path = write_results("scale.json", data)
    console.print(f"Wrote {path}")


if __name__ == "__main__":
    main()
