"""``visionloop model …``: list, show, compare, promote, rollback, approve, reject."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from visionloop.cli import JsonOpt, _ws, emit, model_app, out
from visionloop.cli import _table as _markup_table

VersionArg = Annotated[str, typer.Argument(help="Version number (3 or v3) or an alias (production, …).")]
AliasOpt = Annotated[str, typer.Option("--alias", help="The alias to move.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does it (default: the current user).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the history).")]
DecidedByOpt = Annotated[str, typer.Option("--by", help="Who decides.")]
DecisionReasonOpt = Annotated[str, typer.Option("--reason", help="Why.")]


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """A table whose cells are text, never markup (check names like ``min_class_ap[WBC]``)."""
    return _markup_table(escape(title), columns, [[escape(str(x)) for x in r] for r in rows])


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None


def _f(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, int | float) and not isinstance(x, bool) else "-"


def _d(x: Any) -> str:
    return f"{x:+.3f}" if isinstance(x, int | float) else "-"


@model_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Every model version, newest first, with its status and aliases."""
    from visionloop.registry.aliases import aliases_by_version
    from visionloop.registry.versions import list_models

    ws = _ws()
    models, aliases = list_models(ws), aliases_by_version(ws)
    rows = [
        [
            f"v{m.version}",
            m.status,
            ", ".join(aliases.get(m.version, [])),
            m.architecture,
            m.dataset_version_id[:12],
            _f(m.metrics.get("map50_95")),
            _f(m.metrics.get("map50")),
            m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            m.created_by or "",
        ]
        for m in models
    ]
    columns = [
        "version",
        "status",
        "aliases",
        "architecture",
        "dataset",
        "mAP50-95",
        "mAP50",
        "created",
        "by",
    ]
    emit(
        [{**m.to_dict(), "aliases": aliases.get(m.version, [])} for m in models],
        as_json,
        lambda: out.print(_table("Model versions", columns, rows)),
    )


@model_app.command("show")
def show(version: VersionArg, as_json: JsonOpt = False) -> None:
    """Metrics per class, the gate report (every check), lineage and artifacts with their blob paths."""
    from visionloop.registry.aliases import aliases_of
    from visionloop.registry.versions import blob_location, get_model

    ws = _ws()
    m = get_model(ws, version)
    blobs = {"weights": m.weights_oid, **m.artifacts}
    paths = {name: blob_location(ws, oid) for name, oid in blobs.items()}
    data = {**m.to_dict(), "aliases": aliases_of(ws, m.version), "paths": paths}

    def render() -> None:
        decided = (
            f"\n  decided: {m.status} by {m.decided_by} at {m.decided_at} ({m.decision_reason})"
            if m.decided_by
            else ""
        )
        out.print(f"Model version [bold]v{m.version}[/]", highlight=False)
        out.print(
            f"  status: {m.status}; aliases: {', '.join(data['aliases']) or '-'}\n"
            f"  architecture: {m.architecture} at {m.imgsz} px, classes: {', '.join(m.classes)}\n"
            f"  run: {m.run_id}   dataset version: {m.dataset_version_id}\n"
            f"  created: {m.created_at} by {m.created_by or '-'}{decided}",
            highlight=False,
            markup=False,
        )
        mt = m.metrics
        out.print(
            f"  mAP50-95 {_f(mt.get('map50_95'))}  mAP50 {_f(mt.get('map50'))}  mAP75 {_f(mt.get('map75'))}  "
            f"AR100 {_f(mt.get('ar100'))}  images {mt.get('n_images', '-')}",
            highlight=False,
        )
        per_class = mt.get("per_class") or {}
        rows = [
            [c, _f(x.get("ap")), _f(x.get("ap50")), _f(x.get("recall")), x.get("n_gt", "-")]
            for c, x in per_class.items()
        ]
        out.print(_table("Metrics per class", ["class", "AP", "AP50", "Recall", "GT boxes"], rows))
        g = m.gate_report
        if g:
            rows = [
                [c["name"], _f(c["value"]), _f(c["threshold"]), c["status"], c["detail"]] for c in g["checks"]
            ]
            verdict = ("passed" if g["passed"] else "FAILED") + ("" if g["complete"] else ", incomplete")
            out.print(
                _table(
                    f"Gate report ({verdict}; {g.get('split', 'test')} split of "
                    f"{str(g.get('dataset_version_id', ''))[:12]}, {g.get('gated_at', '')})",
                    ["check", "Value", "Threshold", "status", "detail"],
                    rows,
                )
            )
        else:
            out.print(f"Not gated yet: `visionloop model gate {m.version}`")
        if m.lineage:
            out.print("Lineage")
            for k, v in m.lineage.items():
                out.print(f"  {k}: {v}", highlight=False, markup=False)
        arows = [[name, oid[:12], paths[name]] for name, oid in blobs.items()]
        out.print(_table("Artifacts", ["name", "blob", "path"], arows))

    emit(data, as_json, render)


@model_app.command("compare")
def compare(
    a: Annotated[str, typer.Argument(help="From version (or alias).")],
    b: Annotated[str, typer.Argument(help="To version (or alias).")],
    as_json: JsonOpt = False,
) -> None:
    """Overall and per-class AP / AP50 / recall of two versions side by side, with deltas (B − A)."""
    from visionloop.registry.versions import compare_models

    d = compare_models(_ws(), a, b)

    def render() -> None:
        va, vb = f"v{d['a']}", f"v{d['b']}"
        if not d["same_dataset_version"]:
            out.print(
                f"Note: measured on different dataset versions ({d['dataset_versions']['a'][:12]} vs "
                f"{d['dataset_versions']['b'][:12]}); `visionloop model gate` compares on the same split."
            )
        rows = [[k, _f(x["a"]), _f(x["b"]), _d(x["delta"])] for k, x in d["overall"].items()]
        out.print(_table("Overall", ["metric", va, vb, "Delta"], rows))
        crow = [
            [
                c,
                *[
                    s
                    for k in ("ap", "ap50", "recall")
                    for s in (_f(x[k]["a"]), _f(x[k]["b"]), _d(x[k]["delta"]))
                ],
            ]
            for c, x in d["per_class"].items()
        ]
        cols = ["class"] + [f"{k} {s}" for k in ("AP", "AP50", "Recall") for s in (va, vb, "Δ")]
        out.print(_table("Per class", cols, crow))

    emit(d, as_json, render)


@model_app.command("gate")
def gate(
    version: VersionArg,
    latency_ms: Annotated[
        float | None, typer.Option("--latency-ms", help="Measured ONNX Runtime p50 latency (ms).")
    ] = None,
    size_mb: Annotated[float | None, typer.Option("--size-mb", help="Exported model size (MB).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a version and the production model on its test split; check floors, regression, budgets."""
    from visionloop.registry.gate import gate_model
    from visionloop.registry.versions import get_model

    ws = _ws()
    report = gate_model(ws, get_model(ws, version).version, latency_ms=latency_ms, size_mb=size_mb)
    m = get_model(ws, version)
    data = {"version": m.version, "status": m.status, **report.to_dict()}

    def render() -> None:
        rows = [[c.name, _f(c.value), _f(c.threshold), c.status, c.detail] for c in report.checks]
        out.print(_table(f"Gate of v{m.version}", ["check", "Value", "Threshold", "status", "detail"], rows))
        incomplete = "" if report.complete else " (incomplete: some checks did not run)"
        out.print(f"v{m.version} is now [bold]{m.status}[/]{incomplete}")

    emit(data, as_json, render)
    if not report.passed:
        raise typer.Exit(7)


@model_app.command("promote")
def promote(
    version: VersionArg,
    alias: AliasOpt = "production",
    by: ByOpt = None,
    reason: ReasonOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if not approved (recorded).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point an alias (default production) at an approved version."""
    from visionloop.registry.aliases import promote as move

    e = move(_ws(), version, alias, actor=by or _user(), reason=reason, force=force)
    emit(
        e.to_dict(),
        as_json,
        lambda: out.print(f"{e.alias}: v{e.from_version or '-'} → v{e.to_version} ({e.created_at})"),
    )


@model_app.command("rollback")
def rollback(
    alias: AliasOpt = "production", by: ByOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False
) -> None:
    """Move an alias back to the version it named before the current one."""
    from visionloop.registry.aliases import rollback as back

    e = back(_ws(), alias, actor=by or _user(), reason=reason)
    emit(
        e.to_dict(),
        as_json,
        lambda: out.print(f"{e.alias}: rolled back v{e.from_version} → v{e.to_version} ({e.created_at})"),
    )


def _decide(verb: str, version: str, by: str, reason: str, as_json: bool) -> None:
    from visionloop.registry import approvals

    m = getattr(approvals, verb)(_ws(), version, by=by, reason=reason)
    emit(
        m.to_dict(),
        as_json,
        lambda: out.print(f"v{m.version} {verb.rstrip('e')}ed by {m.decided_by}", markup=False),
    )


@model_app.command("approve")
def approve(
    version: VersionArg, by: DecidedByOpt, reason: DecisionReasonOpt, as_json: JsonOpt = False
) -> None:
    """Approve a version awaiting approval (then it can be promoted)."""
    _decide("approve", version, by, reason, as_json)


@model_app.command("reject")
def reject(
    version: VersionArg, by: DecidedByOpt, reason: DecisionReasonOpt, as_json: JsonOpt = False
) -> None:
    """Reject a version for good."""
    _decide("reject", version, by, reason, as_json)


@model_app.command("history")
def history(alias: AliasOpt = "production", as_json: JsonOpt = False) -> None:
    """Every move of an alias: what served when, who moved it and why."""
    from visionloop.registry.aliases import alias_history

    events = alias_history(_ws(), alias)
    data = [
        {**e.to_dict(), "served_until": nxt.created_at.isoformat() if nxt else None}
        for e, nxt in zip(events, [*events[1:], None], strict=True)
    ]
    rows = [
        [
            d["created_at"][:19],
            d["served_until"][:19] if d["served_until"] else "now",
            d["action"],
            f"v{d['from_version']}" if d["from_version"] else "-",
            f"v{d['to_version']}",
            d["actor"] or "",
            d["reason"] or "",
        ]
        for d in data
    ]
    emit(
        data,
        as_json,
        lambda: out.print(
            _table(
                f"History of {alias!r}",
                ["from time", "until", "action", "from", "to", "actor", "reason"],
                rows,
            )
        ),
    )
