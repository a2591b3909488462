from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="export needs onnxruntime (train extra)")

from visionloop.export.contract import session
from visionloop.export.onnx import compare
from visionloop.export.run import export_model, export_report
from visionloop.registry.gate import gate_model
from visionloop.registry.versions import get_model
from visionloop.train.run import train
from visionloop.types import Detections


def test_an_int8_model_over_its_bound_is_refused(tiny_ws, tiny_cfg) -> None:
    train(tiny_ws, "latest", tiny_cfg.model_copy(update={"epochs": 2, "lr": 0.004}))
    res = export_model(tiny_ws, 1, parity_images=4, int8_max_drop=-1.0, ort=False)
    assert res["int8"]["kept"] is False and "not kept" in res["int8"]["reason"]
    assert "model.int8.onnx" not in res["artifacts"] and "model.ort" not in res["artifacts"]


def test_export_parity_latency_and_the_gate_uses_them(tiny_ws, tiny_cfg) -> None:
    train(tiny_ws, "latest", tiny_cfg.model_copy(update={"epochs": 3, "lr": 0.004}))
    res = export_model(tiny_ws, 1, parity_images=5)
    assert res["parity"]["passed"], res["parity"]
    assert abs(res["parity"]["map50_95_torch"] - res["parity"]["map50_95_onnx"]) <= 0.001
    q = res["int8"]
    assert q["kept"] == (q["map_drop"] <= 0.01) and q["size_mb"] < res["size_mb"]
    assert ("model.int8.onnx" in res["artifacts"]) == q["kept"]
    assert tiny_ws.blobs.has(res["artifacts"]["model.ort"]) and res["ort"]["size_mb"] > 0
    assert res["latency_ms"]["p50"] > 0 and res["size_mb"] > 0.5
    mv = get_model(tiny_ws, 1)
    onnx_bytes = tiny_ws.blobs.get(mv.artifacts["model.onnx"], verify=True)
    sess = session(onnx_bytes)
    out = sess.run(None, {"image": np.zeros((3, 96, 96), np.float32)})
    assert [o.name for o in sess.get_outputs()] == ["boxes", "scores", "labels"] and out[0].shape[-1] == 4
    assert export_report(tiny_ws, 1)["latency_ms"] == res["latency_ms"]

    toml = tiny_ws.root / "visionloop.toml"
    toml.write_text(toml.read_text().replace("max_latency_ms = 0", "max_latency_ms = 0.001"))
    from visionloop.workspace import open_workspace

    ws = open_workspace(tiny_ws.root)
    report = gate_model(ws, 1)
    (check,) = [c for c in report.checks if c.name == "latency_budget"]
    assert check.status == "fail" and check.value == res["latency_ms"]["p50"]
    assert json.loads(json.dumps(report.to_dict()))


@pytest.mark.parametrize(
    ("got", "matched"),
    [
        (Detections([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], [0.9, 0.5]), 2),
        (Detections([[0, 0, 10, 10.5], [20, 20, 30, 30]], [0, 1], [0.9, 0.5]), 1),  # IoU 0.95
        (Detections([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 2], [0.9, 0.5]), 1),  # class changed
        (Detections.empty().__class__(np.zeros((0, 4)), np.zeros(0), np.zeros(0)), 0),
    ],
)
def test_compare_counts_reproduced_boxes(got: Detections, matched: int) -> None:
    ref = Detections([[0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 6, 6]], [0, 1, 0], [0.9, 0.5, 0.01])
    res = compare(ref, got)
    assert res["boxes"] == 2 and res["matched"] == matched


def test_bundle_is_verified_whenever_loaded(tiny_ws, tiny_cfg, tmp_path) -> None:
    from visionloop.errors import DataError, UsageError
    from visionloop.export.bundle import load_bundle, write_bundle

    train(tiny_ws, "latest", tiny_cfg.model_copy(update={"epochs": 1}))
    with pytest.raises(UsageError, match="has not been exported"):
        write_bundle(tiny_ws, 1, tmp_path / "early")
    export_model(tiny_ws, 1, parity_images=3, int8=False, ort=False)
    b = write_bundle(tiny_ws, 1, tmp_path / "bundle")
    assert b.version == 1 and b.classes == ["disc", "square", "triangle", "cross"]
    manifest = b.manifest
    assert manifest["input"]["width"] == 96 and manifest["files"]["model.onnx"]["bytes"] > 0
    assert manifest["lineage"]["dataset_version"] and manifest["export"]["parity"]["passed"]
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "Intended use and known limits" in card and "| disc |" in card
    assert load_bundle(tmp_path / "bundle").file("onnx").name == "model.onnx"
    with (tmp_path / "bundle" / "model.onnx").open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(DataError, match=r"model\.onnx does not match its sha256"):
        load_bundle(tmp_path / "bundle")
    with pytest.raises(UsageError, match="not empty"):
        write_bundle(tiny_ws, 1, tmp_path / "bundle")
