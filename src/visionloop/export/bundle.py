"""Bundles: the deployable unit of a model version.

A bundle folder holds the exported model files, ``bundle.json`` (classes, input
size, preprocessing, output contract, score threshold, metrics, lineage, and the
sha256 and size of every file) and ``MODEL_CARD.md``. :func:`load_bundle`
verifies every file against ``bundle.json`` whenever a bundle is loaded; the
serving side needs nothing but this module, json and hashlib (no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.errors import DataError, UsageError

BUNDLE_FORMAT = "visionloop.bundle/1"
FILES = {"model.onnx": "onnx", "model.int8.onnx": "onnx-int8", "model.ort": "ort"}


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.manifest["model_version"])

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    def file(self, kind: str = "onnx") -> Path:
        """The verified file of ``kind`` (``onnx``, ``onnx-int8``, ``ort``)."""
        for name, meta in self.manifest["files"].items():
            if meta["kind"] == kind:
                return self.path / str(name)
        raise UsageError(
            f"bundle v{self.version} has no {kind} model",
            where=str(self.path),
            fix=f"use one of {sorted(m['kind'] for m in self.manifest['files'].values())}",
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _card(m: dict[str, Any], export: dict[str, Any]) -> str:
    metrics = m["metrics"]
    rows = "\n".join(
        f"| {name} | {pc['ap']:.3f} | {pc['ap50']:.3f} | {pc['recall']:.3f} | {pc['n_gt']} |"
        if pc.get("ap") is not None
        else f"| {name} | – | – | – | 0 |"
        for name, pc in metrics.get("per_class", {}).items()
    )
    gate = m.get("gate_report") or {}
    checks = "\n".join(
        f"| {c['name']} | {c['status']} | {c['detail']} |" for c in gate.get("checks", [])
    ) or ("| – | not gated | – |")
    parity = export.get("parity", {})
    int8 = export.get("int8", {})
    return f"""# Model card — {m["project"]} v{m["model_version"]}

**Architecture** {m["architecture"]} · **input** {m["input"]["width"]}×{m["input"]["height"]} RGB ·
**classes** {", ".join(m["classes"])}

## Data
Trained on dataset version `{m["lineage"]["dataset_version"]}` (run {m["lineage"]["run"]}); metrics on its
`{m["lineage"].get("eval_split") or "test"}` split.

## Metrics
mAP50-95 **{metrics["map50_95"]:.3f}**, mAP50 {metrics["map50"]:.3f}, mAP75 {metrics["map75"]:.3f}

| class | AP50-95 | AP50 | recall | objects |
|---|---:|---:|---:|---:|
{rows}

## Gates
| check | status | detail |
|---|---|---|
{checks}

## Export
ONNX opset {export.get("opset")}: parity with PyTorch {("passed" if parity.get("passed") else "FAILED")}
({parity.get("matched")}/{parity.get("boxes")} boxes on {parity.get("images")} images, mAP50-95
{parity.get("map50_95_torch")} vs {parity.get("map50_95_onnx")}); CPU latency p50
{export.get("latency_ms", {}).get("p50")} ms. int8: {int8.get("reason", "not made")}.

## Intended use and known limits
Detects {", ".join(m["classes"])} in images like those of its training data. Accuracy on other
domains (lighting, sensors, scale) is unknown until measured: monitor it in production. Classes
with few examples or small objects have the lowest AP above; check them before relying on them.
"""


def write_bundle(ws: Any, ref: str | int, out: Path | str, *, score_threshold: float = 0.25) -> Bundle:
    """Write the bundle of an exported model version into the new or empty folder ``out``."""
    from visionloop.export.run import export_report
    from visionloop.registry.versions import get_model

    mv = get_model(ws, ref)
    export = export_report(ws, mv.version)
    if export is None or "model.onnx" not in mv.artifacts:
        raise UsageError(
            f"model version {mv.version} has not been exported", fix=f"run `visionloop export {mv.version}`"
        )
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            "the bundle folder exists and is not empty", where=str(target), fix="choose a new folder"
        )
    target.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, kind in FILES.items():
        if name in mv.artifacts:
            data = ws.blobs.get(mv.artifacts[name], verify=True)
            (target / name).write_bytes(data)
            files[name] = {"kind": kind, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest = {
        "format": BUNDLE_FORMAT,
        "project": ws.settings.project.name,
        "model_version": mv.version,
        "architecture": mv.architecture,
        "classes": list(mv.classes),
        "input": {
            "name": "image",
            "width": mv.imgsz,
            "height": mv.imgsz,
            "layout": "CHW",
            "dtype": "float32",
            "color": "RGB",
            "range": [0.0, 1.0],
            "resize": "stretch to width × height (bilinear)",
        },
        "output": {
            "boxes": "float32 [N, 4] xyxy in input pixels (scale back by original / input size)",
            "scores": "float32 [N]",
            "labels": "int64 [N], class index + 1 (0 is never a class)",
        },
        "score_threshold": score_threshold,
        "metrics": mv.metrics,
        "gate_report": mv.gate_report,
        "export": export,
        "lineage": {**mv.lineage, "model_version": mv.version},
        "files": files,
    }
    card = _card({**manifest, "gate_report": mv.gate_report}, export)
    (target / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    files["MODEL_CARD.md"] = {
        "kind": "card",
        "sha256": _sha256(target / "MODEL_CARD.md"),
        "bytes": (target / "MODEL_CARD.md").stat().st_size,
    }
    tmp = target / ".bundle.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, target / "bundle.json")
    return load_bundle(target)


def load_bundle(path: Path | str) -> Bundle:
    """Read a bundle and verify every file's size and sha256; any mismatch is refused."""
    root = Path(path)
    try:
        manifest = json.loads((root / "bundle.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            "no bundle.json here", where=str(root), fix="point at a folder made by `visionloop bundle`"
        ) from None
    except ValueError as exc:
        raise DataError(
            f"bundle.json is not valid JSON ({exc})", where=str(root), fix="re-create the bundle"
        ) from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise DataError(
            f"unknown bundle format {manifest.get('format')!r}",
            where=str(root),
            fix=f"use a {BUNDLE_FORMAT} bundle",
        )
    for name, meta in manifest["files"].items():
        f = root / name
        if "/" in name or name.startswith(".") or not f.is_file():
            raise DataError(f"bundle file {name} is missing", where=str(root), fix="re-create the bundle")
        if f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
            raise DataError(
                f"bundle file {name} does not match its sha256 in bundle.json (changed or corrupt)",
                where=str(root),
                fix="re-create the bundle; never edit one in place",
            )
    return Bundle(root, manifest)
