"""``visionloop dataset …``: snapshot, list, show, diff, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli import JsonOpt, _table, _ws, dataset_app, emit, out
from visionloop.progress import progress_bar


@dataset_app.command("snapshot")
def snapshot(
    message: Annotated[str, typer.Option("-m", "--message", help="What this version is.")],
    keep_splits: Annotated[
        bool | None,
        typer.Option(
            "--keep-splits/--hash-splits",
            help="Keep the source's splits (default: the `split.keep_source_splits` setting).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Freeze the labeled items into an immutable version named by its manifest's hash."""
    from visionloop.data.versions import snapshot as take

    v, created = take(_ws(), message, keep_splits=keep_splits)
    data = {**v.to_dict(), "created": created}
    emit(
        data,
        as_json,
        lambda: out.print(
            f"{'Created' if created else 'Unchanged: already'} dataset version [bold]{v.short}[/] "
            f"({v.n_images} images, {v.n_boxes} boxes; train/val/test "
            f"{'/'.join(str(v.stats['splits'][s]['images']) for s in ('train', 'val', 'test'))})"
        ),
    )


@dataset_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Every dataset version, newest first."""
    from visionloop.data.versions import list_versions

    versions = list_versions(_ws())
    rows = [
        [
            v.short,
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.n_images,
            v.n_boxes,
            (v.parent or "")[:12],
            v.message,
        ]
        for v in versions
    ]
    emit(
        [v.to_dict() for v in versions],
        as_json,
        lambda: out.print(
            _table("Dataset versions", ["id", "created", "images", "boxes", "parent", "message"], rows)
        ),
    )


@dataset_app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix or `latest`.")] = "latest",
    as_json: JsonOpt = False,
) -> None:
    """Images, boxes, per-class counts, boxes per image, box sizes and split sizes of a version."""
    from visionloop.data.versions import show_version

    v = show_version(_ws(), version)
    s = v.stats

    def render() -> None:
        out.print(
            f"Dataset version [bold]{v.id}[/]\n  message: {v.message}\n  created: {v.created_at}\n"
            f"  parent:  {v.parent or '-'}\n  images:  {v.n_images}   boxes: {v.n_boxes}   "
            f"boxes/image: {s['boxes_per_image']['mean']}",
            highlight=False,
        )
        splits = ("train", "val", "test")
        rows = [
            [
                c,
                s["boxes_per_class"].get(c, 0),
                *[s["splits"][x]["boxes_per_class"].get(c, 0) for x in splits],
            ]
            for c in s["classes"]
        ]
        rows.append(["images", v.n_images, *[s["splits"][x]["images"] for x in splits]])
        out.print(_table("Boxes per class and split", ["class", "total", *splits], rows))
        hist = s["boxes_per_image"]["histogram"]
        out.print(_table("Boxes per image", ["boxes", "images"], [[k, n] for k, n in hist.items()]))
        sizes = s["box_sizes"]
        out.print(
            _table("Box sizes", ["COCO area", "boxes"], [[k, n] for k, n in sizes["coco_area"].items()])
        )
        q = sizes["side_px_quantiles"]
        if q:
            out.print(f"  box side (sqrt area) px: p5 {q['p5']}, median {q['p50']}, p95 {q['p95']}")

    emit(v.to_dict(), as_json, render)


@dataset_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="From version.")],
    b: Annotated[str, typer.Argument(help="To version.")],
    as_json: JsonOpt = False,
) -> None:
    """Images added / removed / relabeled and per-class box deltas between two versions."""
    from visionloop.data.versions import diff_versions

    d = diff_versions(_ws(), a, b)

    def render() -> None:
        out.print(
            f"{d['from'][:12]} → {d['to'][:12]}: +{d['added']} images, -{d['removed']}, "
            f"{d['relabeled']} relabeled, {d['moved_split']} moved split, {d['unchanged']} unchanged"
        )
        rows = [[c, x["from"], x["to"], f"{x['delta']:+d}"] for c, x in d["boxes_per_class"].items()]
        out.print(_table("Boxes per class", ["class", "from", "to", "delta"], rows))

    emit(d, as_json, render)


@dataset_app.command("export")
def export(
    version: Annotated[str, typer.Argument(help="Version id, unique prefix or `latest`.")],
    out_dir: Annotated[Path, typer.Argument(help="New or empty folder.")],
    fmt: Annotated[str, typer.Option("--format", help="coco, yolo or voc.")] = "coco",
    as_json: JsonOpt = False,
) -> None:
    """Write a version as COCO, YOLO or VOC (lossless: import → export → import is the same data)."""
    from visionloop.data.export import export_version

    with progress_bar(f"Exporting {fmt}", not as_json) as advance:
        res = export_version(_ws(), version, fmt, out_dir, progress=advance)
    emit(
        res,
        as_json,
        lambda: out.print(f"Wrote {res['images']} images ({res['boxes']} boxes) as {fmt} to {res['out']}"),
    )
