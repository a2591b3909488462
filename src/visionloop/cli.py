"""The ``visionloop`` command line: one command per verb, each a thin call into the
Python API. This is the one place where typed errors become exit codes.

Heavy modules are imported inside commands so ``visionloop --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from visionloop.errors import VisionloopError
from visionloop.progress import progress_bar

if TYPE_CHECKING:
    from visionloop.workspace import Workspace

app = typer.Typer(
    name="visionloop",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="The automated MLOps loop for object detection.",
)
dataset_app = typer.Typer(no_args_is_help=True, help="Dataset versions: snapshot, list, show, diff, export.")
app.add_typer(dataset_app, name="dataset")
model_app = typer.Typer(
    no_args_is_help=True, help="Model versions: list, show, compare, promote, rollback, approve, reject."
)
app.add_typer(model_app, name="model")
pipeline_app = typer.Typer(no_args_is_help=True, help="Pipeline runs: list, show.")
app.add_typer(pipeline_app, name="pipeline")
user_app = typer.Typer(no_args_is_help=True, help="Dashboard users: add, list, token.")
app.add_typer(user_app, name="user")
review_app = typer.Typer(
    no_args_is_help=True,
    help="The review queue: next, accept, edit, reject, skip, list, stats, export, import.",
)
app.add_typer(review_app, name="review")
release_app = typer.Typer(
    no_args_is_help=True,
    help="Model distribution to apps: keygen, public-key, publish, kill, list, show (signed channels).",
)
app.add_typer(release_app, name="release")
monitor_app = typer.Typer(
    no_args_is_help=True, help="Production monitoring: report (windows, drift, plots), reference, accuracy."
)
app.add_typer(monitor_app, name="monitor")
rollout_app = typer.Typer(
    no_args_is_help=True,
    help="The servers' rollout of the `candidate` alias: status, canary, shadow, rollback, promote.",
)
app.add_typer(rollout_app, name="rollout")

out = Console()
err = Console(stderr=True)
_state: dict[str, Any] = {"workspace": None, "json": False}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


@app.callback()
def _root(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace folder (else $VISIONLOOP_WORKSPACE, else the nearest .visionloop).",
            show_default=False,
        ),
    ] = None,
) -> None:
    _state["workspace"] = workspace


def _ws() -> Workspace:
    from visionloop.workspace import open_workspace

    return open_workspace(_state["workspace"])


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")
    else:
        render()


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    return t


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Project folder; the workspace is DIR/.visionloop.")
    ] = Path(),
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder's name).")] = None,
    classes: Annotated[str, typer.Option(help="Comma-separated class names, in id order.")] = "",
    database: Annotated[str, typer.Option(help="SQLAlchemy URL of the metadata DB (default: SQLite).")] = "",
    blobs: Annotated[
        str, typer.Option(help="Blob store: a folder in the workspace or an fsspec URL.")
    ] = "blobs",
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: visionloop.toml, the metadata database and the blob store."""
    from visionloop.workspace import init_workspace

    names = [c.strip() for c in classes.split(",") if c.strip()]
    ws = init_workspace(directory, name=name, classes=names, database=database, blobs=blobs)
    data = {
        "workspace": str(ws.root),
        "database": ws.settings.database_url(ws.root),
        "blobs": ws.blobs.url,
        "classes": ws.classes(),
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"Created workspace [bold]{ws.root}[/] (classes: {', '.join(data['classes']) or 'none yet'})"
        ),
    )


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="Dataset folder or .zip/.tar[.gz] archive.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="voc, coco, yolo or images (detected when omitted).")
    ] = None,
    add_classes: Annotated[bool, typer.Option("--add-classes", help="Add unknown classes.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Any finding makes the import fail.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a VOC, COCO, YOLO or plain-image dataset: validated, deduplicated, one transaction."""
    from visionloop.data.ingest import import_dataset

    ws = _ws()
    with progress_bar("Importing", not as_json) as advance:
        res = import_dataset(
            ws,
            path,
            fmt=fmt,
            add_classes=add_classes,
            strict=strict,
            progress=advance,
            on_scan=lambda n: advance(total=n),
        )
    report = res.to_dict()

    def render() -> None:
        rows = [
            ["scanned", res.scanned],
            ["accepted", res.accepted],
            ["  new", res.new],
            ["  relabeled", res.relabeled],
            ["  unchanged", res.unchanged],
            ["  unlabeled", res.unlabeled],
            ["rejected", res.rejected],
            ["boxes", res.boxes],
        ]
        rows += [[f"  {c}", n] for c, n in res.boxes_per_class.items()]
        out.print(f"Import of {res.source} ({res.format})", highlight=False)
        out.print(_table("", ["images", "count"], rows))
        summary = report["findings_summary"]
        frows = [
            [sev, rule, n] for sev in ("error", "dropped", "warning") for rule, n in summary[sev].items()
        ]
        if frows:
            out.print(_table("Findings", ["severity", "rule", "count"], frows))
            for f in res.findings[:10]:
                out.print(
                    f"  [{'red' if f.severity == 'error' else 'yellow'}]{f.rule}[/] {f.file}: {f.message}",
                    markup=True,
                    highlight=False,
                )
            if len(res.findings) > 10:
                out.print(f"  … {len(res.findings) - 10} more in the report")
        if res.added_classes:
            out.print(f"Added classes: {', '.join(res.added_classes)}")
        out.print(f"Report: {res.report_path}")

    emit(report, as_json, render)
    if res.rejected and not res.accepted:
        raise typer.Exit(5)


@app.command()
def fsck(
    clean_temp: Annotated[
        bool,
        typer.Option("--clean-temp", help="Remove temp files of interrupted writes (not during an import)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-hash every blob and check every reference in the workspace."""
    from visionloop.store.fsck import fsck as run_fsck

    ws = _ws()
    with progress_bar("Checking blobs", not as_json) as advance:
        rep = run_fsck(ws, progress=advance, clean_temp=clean_temp)

    def render() -> None:
        for e in rep.errors:
            err.print(f"[red]error[/] {e}", highlight=False)
        out.print(
            f"{rep.blobs_checked} blobs re-hashed, {rep.references_checked} references checked: "
            f"{'clean' if rep.ok else f'{len(rep.errors)} error(s)'}; "
            f"{len(rep.unreferenced)} unreferenced blob(s), {rep.temp_files} temp file(s) "
            "(leftovers of interrupted writes, harmless)"
        )

    emit(rep.to_dict(), as_json, render)
    if not rep.ok:
        raise typer.Exit(4)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="New or empty folder to write into.")],
    images: Annotated[int, typer.Option(help="Number of images.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    domain: Annotated[str, typer.Option(help="day, night or fog.")] = "day",
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 320,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic labeled detection dataset (YOLO format)."""
    from visionloop.data.synth import generate

    with progress_bar(f"Generating {domain}", not as_json) as advance:
        advance(total=images)
        summary = generate(out_dir, images=images, seed=seed, domain=domain, size=size, progress=advance)
    data = {
        "out": str(summary.out),
        "domain": summary.domain,
        "seed": summary.seed,
        "images": summary.images,
        "images_per_split": summary.images_per_split,
        "boxes_per_class": summary.boxes_per_class,
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"Wrote {summary.images} {domain} images to {summary.out} (splits {summary.images_per_split})"
        ),
    )


from visionloop import (  # noqa: E402,F401  (register their commands)
    cli_dataset,
    cli_model,
    cli_monitor,
    cli_pipeline,
    cli_release,
    cli_review,
    cli_rollout,
    cli_serve,
    cli_train,
    cli_ui,
)


def main() -> None:
    """Entry point: run the app; typed errors become messages and exit codes here."""
    try:
        app()
    except VisionloopError as exc:
        if "--json" in sys.argv:
            sys.stdout.write(json.dumps(exc.to_dict()) + "\n")
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
