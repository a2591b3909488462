"""The model half end to end through the CLI: train → evaluate → gate → promote → a worse model refused."""

from __future__ import annotations

import json

from _helpers import run_cli


def test_train_evaluate_gate_promote_and_refuse_a_worse_model(ws, tmp_path, capsys, monkeypatch) -> None:
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot

    generate(tmp_path / "data", images=96, seed=2, size=96)
    import_dataset(ws, tmp_path / "data")
    snapshot(ws, "96 images", keep_splits=True)
    root = ws.root
    ws = str(root)
    toml = root / "visionloop.toml"
    toml.write_text(toml.read_text().replace("max_regression = 0.01", "max_regression = 0.0"))
    common = ["--imgsz", "96", "--batch-size", "4", "--augment", "light", "--device", "cpu"]
    code, out, err = run_cli(
        capsys,
        monkeypatch,
        "-w",
        ws,
        "train",
        "--epochs",
        "12",
        "--lr",
        "0.003",
        *common,
        "--by",
        "ana",
        "--json",
    )
    assert code == 0, err
    v1 = json.loads(out)
    assert v1["model_version"] == 1 and v1["fit"]["epochs_done"] >= 4

    code, out, _ = run_cli(capsys, monkeypatch, "-w", ws, "evaluate", "1", "--split", "val", "--json")
    assert code == 0
    evaluation = json.loads(out)
    assert set(evaluation["artifacts"]) >= {"pr_curves.png", "confusion_matrix.png"}

    code, out, _ = run_cli(capsys, monkeypatch, "-w", ws, "model", "gate", "1", "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"], report
    assert v1["metrics"]["map50_95"] > 0.02, f"v1 learned too little: {v1['metrics']['map50_95']}"
    code, _, err = run_cli(
        capsys, monkeypatch, "-w", ws, "model", "promote", "1", "--by", "ana", "--reason", "first"
    )
    assert code == 0, err

    # a deliberately worse model: one epoch at a learning rate too small to learn anything
    code, out, err = run_cli(
        capsys, monkeypatch, "-w", ws, "train", "--epochs", "1", "--lr", "0.000001", *common, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["model_version"] == 2
    code, out, _ = run_cli(capsys, monkeypatch, "-w", ws, "model", "gate", "2", "--json")
    assert code == 7
    report = json.loads(out)
    (check,) = [c for c in report["checks"] if c["name"] == "no_regression"]
    assert check["status"] == "fail"
    assert "below production v1" in check["detail"]
    code, _, err = run_cli(
        capsys, monkeypatch, "-w", ws, "model", "promote", "2", "--by", "ana", "--reason", "try"
    )
    assert code == 7 and "gate_failed" in err
