"""Bundles: the deployable unit of a model version.

A bundle holds the exported model files, ``bundle.json`` (classes, input size,
preprocessing, output contract, score threshold, metrics, lineage, and the sha256 and
size of every file) and ``MODEL_CARD.md``.

:func:`publish_bundle` stores ``bundle.json`` and the model card as blobs and names them
as artifacts of the model version: the model files already are blobs, and a blob's oid is
its sha256, so a published bundle is complete inside the workspace. :func:`materialize_bundle`
writes one into a folder (atomically) and :func:`load_bundle` verifies every file against
``bundle.json`` whenever a bundle is loaded. None of this imports torch: the serving side
needs the registry, the blob store, json and hashlib only.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.errors import DataError, UsageError
from visionloop.fileio import fsync_dir, sha256_file, write_new
from visionloop.registry.versions import ModelVersion, add_artifacts, get_model
from visionloop.store.blobs import sha256_hex
from visionloop.workspace import Workspace

BUNDLE_FORMAT = "visionloop.bundle/1"
FILES = {"model.onnx": "onnx", "model.int8.onnx": "onnx-int8", "model.ort": "ort"}
MANIFEST = "bundle.json"
CARD = "MODEL_CARD.md"


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


def _export_report(ws: Workspace, mv: ModelVersion) -> dict[str, Any]:
    """The version's export report, read from its blob (``export.run`` would import torch)."""
    oid = mv.artifacts.get("export.json")
    if oid is None or "model.onnx" not in mv.artifacts:
        raise UsageError(
            f"model version {mv.version} has not been exported",
            where=str(ws.root),
            fix=f"run `visionloop export {mv.version}`",
        )
    return dict(json.loads(ws.blobs.get(oid, verify=True)))


def _build(ws: Workspace, mv: ModelVersion, score_threshold: float) -> tuple[bytes, bytes]:
    """The bytes of ``bundle.json`` and ``MODEL_CARD.md`` (the same inputs give the same bytes)."""
    export = _export_report(ws, mv)
    files = {
        name: {"kind": kind, "sha256": mv.artifacts[name], "bytes": ws.blobs.size(mv.artifacts[name])}
        for name, kind in FILES.items()
        if name in mv.artifacts
    }
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
    card = _card(manifest, export).encode()
    files[CARD] = {"kind": "card", "sha256": sha256_hex(card), "bytes": len(card)}
    return json.dumps(manifest, indent=1, default=str).encode(), card


def _publish(ws: Workspace, mv: ModelVersion, score_threshold: float) -> str:
    if not 0.0 <= score_threshold <= 1.0:
        raise UsageError(
            f"score threshold {score_threshold} is outside [0, 1]", fix="pass a value such as 0.25"
        )
    manifest, card = _build(ws, mv, score_threshold)
    oid, card_oid = sha256_hex(manifest), sha256_hex(card)
    if mv.artifacts.get(MANIFEST) == oid and mv.artifacts.get(CARD) == card_oid:
        return oid  # published already, byte for byte
    ws.blobs.put_bytes(card, card_oid)
    ws.blobs.put_bytes(manifest, oid)
    add_artifacts(ws, mv.version, {CARD: card_oid, MANIFEST: oid})
    return oid


def publish_bundle(ws: Workspace, ref: str | int, *, score_threshold: float = 0.25) -> dict[str, Any]:
    """Publish the bundle of an exported model version in the workspace; its ``bundle.json`` content.

    ``bundle.json`` and ``MODEL_CARD.md`` become blobs and artifacts of the version. Publishing
    again with the same inputs changes nothing; a new threshold (or a new gate report) publishes a
    new ``bundle.json`` in place of the old one. Needs no torch."""
    mv = get_model(ws, ref)
    oid = _publish(ws, mv, score_threshold)
    return dict(json.loads(ws.blobs.get(oid)))


def published_bundle(ws: Workspace, ref: str | int) -> str | None:
    """The blob oid of the version's published ``bundle.json``, or None."""
    return get_model(ws, ref).artifacts.get(MANIFEST)


def _matches(dest: Path, oid: str) -> Bundle | None:
    """The bundle in ``dest`` when it is the published one (``bundle.json`` = ``oid``) and verifies."""
    manifest = dest / MANIFEST
    if not manifest.is_file() or sha256_file(manifest) != oid:
        return None
    try:
        return load_bundle(dest)
    except DataError:
        return None  # changed or incomplete: written anew


def _materialize(ws: Workspace, version: int, oid: str, dest: Path) -> Bundle:
    found = _matches(dest, oid)
    if found is not None:
        return found
    manifest = ws.blobs.get(oid, verify=True)
    files = json.loads(manifest)["files"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        for name, meta in files.items():
            if "/" in name or name.startswith(".") or name == MANIFEST:
                raise DataError(
                    f"bundle.json of v{version} names the file {name!r}",
                    where=ws.blobs.url,
                    fix=f"publish the bundle again (`visionloop bundle {version}`)",
                )
            write_new(tmp / name, ws.blobs.get(meta["sha256"], verify=True))
        write_new(tmp / MANIFEST, manifest)
        fsync_dir(tmp)
        _install(tmp, dest, oid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(dest.parent)
    return load_bundle(dest)


def _install(tmp: Path, dest: Path, oid: str) -> None:
    """Rename the finished folder ``tmp`` to ``dest``; a stale ``dest`` is moved aside first."""
    try:
        tmp.rename(dest)  # replaces nothing, or an empty folder
        return
    except OSError:
        if _matches(dest, oid) is not None:
            return  # another process put the same bundle there first
    old = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.old"
    dest.rename(old)
    try:
        tmp.rename(dest)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def materialize_bundle(ws: Workspace, ref: str | int, dest: Path | str) -> Bundle:
    """Write the published bundle of a model version into the folder ``dest`` and load it (verified).

    The files are written into a temporary sibling folder and renamed into place, so ``dest`` never
    holds half a bundle; a ``dest`` that already holds this bundle, intact, is reused. Needs no torch."""
    mv = get_model(ws, ref)
    oid = mv.artifacts.get(MANIFEST)
    if oid is None:
        if "model.onnx" not in mv.artifacts:
            _export_report(ws, mv)  # raises: not exported
        raise UsageError(
            f"model version {mv.version} has no published bundle",
            where=str(ws.root),
            fix=f"run `visionloop bundle {mv.version}`",
        )
    return _materialize(ws, mv.version, oid, Path(dest))


def write_bundle(ws: Workspace, ref: str | int, out: Path | str, *, score_threshold: float = 0.25) -> Bundle:
    """Publish the bundle of an exported model version and write it into the new or empty folder ``out``."""
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(
            "the bundle folder exists and is not empty", where=str(target), fix="choose a new folder"
        )
    mv = get_model(ws, ref)
    oid = _publish(ws, mv, score_threshold)
    return _materialize(ws, mv.version, oid, target)


def load_bundle(path: Path | str) -> Bundle:
    """Read a bundle and verify every file's size and sha256; any mismatch is refused."""
    root = Path(path)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
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
        if f.stat().st_size != meta["bytes"] or sha256_file(f) != meta["sha256"]:
            raise DataError(
                f"bundle file {name} does not match its sha256 in bundle.json (changed or corrupt)",
                where=str(root),
                fix="re-create the bundle; never edit one in place",
            )
    return Bundle(root, manifest)
