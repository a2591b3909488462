"""Ingest throughput: ``import_dataset`` vs ``dvc add`` on BCCD (364 JPEGs) and a 10x copy of it.

For each dataset, in the same run and on the same machine:

- visionloop: a fresh workspace is created (untimed), then one fresh process opens it
  and calls ``import_dataset`` on the folder (decode + validate + hash + store + commit);
- dvc: a fresh ``git init`` + ``dvc init`` repository holds a copy of the same folder,
  and one ``dvc add <folder>`` process is timed (hash + copy into the cache + .dvc file).

Both measured processes start from a warm page cache (every source file is read once
just before each run). Wall time is the whole process, start-up included, for both
tools; peak memory is that process's ``ru_maxrss``. The 10x copy holds 10 distinct
copies of every image (copy ``k > 0`` has bytes appended after the JPEG end marker,
which decoders ignore) with its VOC annotation renamed to match.

Run: ``.venv/bin/python bench/ingest.py`` (``--help`` for options). Results are printed
and written to ``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from _common import (
    DVC_VENV,
    Measured,
    bccd_path,
    busy_warning,
    child_env,
    code_state,
    fail,
    gib,
    machine,
    run_measured,
    verdict,
    warm,
    write_results,
)

TARGET_IMAGES_PER_S = 300.0
TARGET_RATIO = 3.0
VOC_DIRS = ("Annotations", "JPEGImages", "ImageSets")

# The measured visionloop process: open the workspace, import the folder, report.
VL_RUNNER = """
import json, sys, time
t0 = time.perf_counter()
from visionloop.workspace import open_workspace
from visionloop.data.ingest import import_dataset
t1 = time.perf_counter()
ws = open_workspace(sys.argv[1])
t2 = time.perf_counter()
r = import_dataset(ws, sys.argv[2])
t3 = time.perf_counter()
ws.close()
out = {"import_s": t1 - t0, "open_s": t2 - t1, "import_dataset_s": t3 - t2, "report": r.to_dict()}
out["report"].pop("findings")
with open(sys.argv[3], "w") as f:
    json.dump(out, f)
"""


# -- datasets -------------------------------------------------------------------------------------
def prepare_x1(src: Path, out: Path) -> int:
    for d in VOC_DIRS:
        if (src / d).is_dir():
            shutil.copytree(src / d, out / d)
    return len(list((out / "JPEGImages").iterdir()))


def prepare_copies(src: Path, out: Path, copies: int) -> int:
    """``copies`` distinct copies of every annotated image, annotations renamed to match."""
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / d).mkdir(parents=True)
    n = 0
    for xml in sorted((src / "Annotations").glob("*.xml")):
        stem = xml.stem
        images = [p for p in (src / "JPEGImages").glob(f"{stem}.*") if p.is_file()]
        if not images:
            continue
        image = images[0]
        data, text = image.read_bytes(), xml.read_text(encoding="utf-8")
        for k in range(copies):
            new = f"{stem}_c{k:02d}"
            extra = b"" if k == 0 else b"\x00visionloop-bench-copy-%d" % k  # after FFD9: ignored by decoders
            (out / "JPEGImages" / f"{new}{image.suffix}").write_bytes(data + extra)
            (out / "Annotations" / f"{new}.xml").write_text(text.replace(stem, new), encoding="utf-8")
            n += 1
    main = src / "ImageSets" / "Main"
    for listing in sorted(main.glob("*.txt")) if main.is_dir() else []:
        stems = listing.read_text(encoding="utf-8").split()
        lines = "".join(f"{s}_c{k:02d}\n" for s in stems for k in range(copies))
        (out / "ImageSets" / "Main" / listing.name).write_text(lines, encoding="utf-8")
    return n


# -- runs -----------------------------------------------------------------------------------------
def run_visionloop(dataset: Path, work: Path, tag: str) -> Measured:
    from visionloop.workspace import init_workspace

    project = work / f"vl-{tag}"
    project.mkdir()
    init_workspace(project).close()  # untimed, like `dvc init`
    warm(dataset)
    result = work / f"vl-{tag}.json"
    m = run_measured(
        [sys.executable, "-c", VL_RUNNER, str(project), str(dataset), str(result)],
        env=child_env(),
        result_file=result,
    )
    if not m.ok:
        fail(f"visionloop import failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
    return m


def run_dvc(dvc: Path, dataset: Path, work: Path, tag: str) -> tuple[Measured, dict[str, Any]]:
    repo = work / f"dvc-{tag}"
    repo.mkdir()
    env = child_env({"DVC_NO_ANALYTICS": "1"})

    def setup(*cmd: str) -> None:
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)

    setup("git", "init", "-q")
    setup(str(dvc), "init", "-q")
    setup(str(dvc), "config", "core.analytics", "false")
    shutil.copytree(dataset, repo / "data")
    warm(repo / "data")
    m = run_measured([str(dvc), "add", "-q", "data"], cwd=repo, env=env)
    if not m.ok or not (repo / "data.dvc").is_file():
        fail(f"`dvc add` failed (exit {m.returncode}):\n{m.stderr[-3000:]}")
    cache = repo / ".dvc" / "cache"
    cached = sum(1 for p in cache.rglob("*") if p.is_file()) if cache.is_dir() else 0
    return m, {"cache_files": cached}


def summarize(runs: list[Measured], images: int) -> dict[str, Any]:
    wall = statistics.median(r.wall_s for r in runs)
    return {
        "runs": [{"wall_s": round(r.wall_s, 3), "peak_rss_bytes": r.peak_rss_bytes} for r in runs],
        "wall_s": round(wall, 3),
        "images_per_s": round(images / wall, 1),
        "peak_rss_bytes": max(r.peak_rss_bytes for r in runs),
    }


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=10, help="copies in the large dataset (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="measured runs per tool and dataset (median)")
    ap.add_argument("--dvc", type=Path, default=DVC_VENV / "bin" / "dvc", help="the dvc executable")
    ap.add_argument("--workdir", type=Path, default=None, help="where temp data goes (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    machine_at_start, code_at_start = machine(), code_state()
    if warning := busy_warning():
        console.print(f"[yellow]warning[/yellow]: {warning}")

    src = bccd_path()
    if not (src / "Annotations").is_dir() or not (src / "JPEGImages").is_dir():
        fail(
            f"BCCD dataset not found at {src} (expected Annotations/ and JPEGImages/).\n"
            "Set VISIONLOOP_BCCD to the folder of the Pascal VOC BCCD dataset."
        )
    dvc: Path | None = args.dvc if args.dvc.is_file() else None
    if dvc is None:
        console.print(
            f"[yellow]dvc not found at {args.dvc}[/yellow]: only visionloop is measured.\n"
            "Install the peer tool with `make bench` (it creates bench/.venv-dvc), or by hand:\n"
            "  python3 -m venv bench/.venv-dvc && bench/.venv-dvc/bin/pip install dvc"
        )
    dvc_version = None
    if dvc is not None:
        dvc_version = subprocess.run(
            [str(dvc), "--version"], capture_output=True, text=True, env=child_env({"DVC_NO_ANALYTICS": "1"})
        ).stdout.strip()

    work = Path(tempfile.mkdtemp(prefix="vl-bench-ingest-", dir=args.workdir))
    datasets: dict[str, dict[str, Any]] = {}
    try:
        x1 = work / "bccd-x1"
        n1 = prepare_x1(src, x1)
        xn = work / f"bccd-x{args.copies}"
        nn = prepare_copies(src, xn, args.copies)
        for tag, folder, images in (("x1", x1, n1), (f"x{args.copies}", xn, nn)):
            console.print(f"[bold]{tag}[/bold]: {images} images …")
            vl_runs, dvc_runs, dvc_facts = [], [], {}
            for i in range(args.repeat):
                vl_runs.append(run_visionloop(folder, work, f"{tag}-{i}"))
                if dvc is not None:
                    m, dvc_facts = run_dvc(dvc, folder, work, f"{tag}-{i}")
                    dvc_runs.append(m)
            vl = summarize(vl_runs, images)
            report = vl_runs[-1].result["report"]
            vl["import_dataset_s"] = round(
                statistics.median(r.result["import_dataset_s"] for r in vl_runs), 3
            )
            vl["images_per_s_in_call"] = round(images / vl["import_dataset_s"], 1)
            vl["python_imports_s"] = round(statistics.median(r.result["import_s"] for r in vl_runs), 3)
            vl["open_workspace_s"] = round(statistics.median(r.result["open_s"] for r in vl_runs), 3)
            vl["accepted"] = report["images"]["accepted"]
            vl["rejected"] = report["images"]["rejected"]
            vl["findings"] = report["findings_summary"]
            entry: dict[str, Any] = {"images": images, "visionloop": vl}
            if dvc_runs:
                entry["dvc"] = {**summarize(dvc_runs, images), **dvc_facts}
                entry["ratio"] = round(vl["images_per_s"] / entry["dvc"]["images_per_s"], 2)
            datasets[tag] = entry
    finally:
        if args.keep:
            console.print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for entry in datasets.values():
        vl = entry["visionloop"]
        entry["pass"] = {
            "images_per_s": vl["images_per_s"] >= TARGET_IMAGES_PER_S,
            "ratio": entry["ratio"] >= TARGET_RATIO if "ratio" in entry else None,
        }

    table = Table(title="Ingest: visionloop import_dataset vs dvc add (whole process, warm page cache)")
    for col in ("dataset", "images", "tool", "wall s", "images/s", "peak RSS", "vs dvc"):
        table.add_column(col, justify="left" if col in ("dataset", "tool") else "right")
    table.add_column(f"≥ {TARGET_IMAGES_PER_S:.0f} images/s")
    table.add_column(f"≥ {TARGET_RATIO:.0f}× dvc")
    for tag, entry in datasets.items():
        vl = entry["visionloop"]
        ratio = f"{entry['ratio']:.2f}×" if "ratio" in entry else "-"
        table.add_row(
            tag,
            str(entry["images"]),
            "visionloop",
            f"{vl['wall_s']:.2f}",
            f"{vl['images_per_s']:.0f}",
            gib(vl["peak_rss_bytes"]),
            ratio,
            verdict(entry["pass"]["images_per_s"]),
            verdict(entry["pass"]["ratio"]),
        )
        if "dvc" in entry:
            d = entry["dvc"]
            table.add_row(
                "", "", "dvc add", f"{d['wall_s']:.2f}", f"{d['images_per_s']:.0f}", gib(d["peak_rss_bytes"])
            )
    console.print(table)
    for tag, entry in datasets.items():
        vl = entry["visionloop"]
        console.print(
            f"{tag}: import_dataset alone {vl['import_dataset_s']:.2f} s = {vl['images_per_s_in_call']:.0f} images/s "
            f"(process start: imports {vl['python_imports_s']:.2f} s, open_workspace {vl['open_workspace_s']:.2f} s); "
            f"accepted {vl['accepted']}, rejected {vl['rejected']}"
        )

    if warning := busy_warning():
        console.print(f"[yellow]warning[/yellow]: {warning}")
    data = {
        "benchmark": "ingest",
        "machine_at_start": machine_at_start,
        "machine_at_end": machine(),
        "code_at_start": code_at_start,
        "code_at_end": code_state(),
        "dvc_version": dvc_version,
        "repeat": args.repeat,
        "targets": {"images_per_s": TARGET_IMAGES_PER_S, "ratio_vs_dvc": TARGET_RATIO},
        "datasets": datasets,
    }
    path = write_results("ingest.json", data)
    console.print(f"Wrote {path}")


if __name__ == "__main__":
    main()
