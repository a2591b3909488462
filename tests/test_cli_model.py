from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from _helpers import run_cli
from visionloop.config import GatesConfig
from visionloop.data.ingest import import_dataset
from visionloop.data.versions import snapshot
from visionloop.registry import gate as gate_module
from visionloop.registry.gates import evaluate_gates
from visionloop.registry.versions import register_model, set_gate_report, set_status
from visionloop.store import schema
from visionloop.workspace import Workspace, init_workspace, utcnow

CLASSES = ["disc", "square", "triangle", "cross"]


run = run_cli


def metrics(score: float) -> dict[str, Any]:
    per_class = {c: {"ap": score, "ap50": score + 0.2, "recall": 0.8, "n_gt": 5} for c in CLASSES}
    return {
        "map50_95": score,
        "map50": score + 0.2,
        "map75": score,
        "ar100": 0.7,
        "n_images": 4,
        "per_class": per_class,
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch, synth_day: Path) -> Iterator[Workspace]:
    """A workspace with a dataset version, a run and a weights blob; the CLI finds it from the cwd."""
    monkeypatch.delenv("VISIONLOOP_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    ws = init_workspace(tmp_path)
    import_dataset(ws, synth_day)
    ws.dataset_version_id = snapshot(ws, "seed", keep_splits=True)[0].id  # type: ignore[attr-defined]
    with ws.engine.begin() as conn:
        ws.run_id = conn.execute(  # type: ignore[attr-defined]
            insert(schema.runs).values(
                kind="train",
                status="finished",
                dataset_version_id=ws.dataset_version_id,  # type: ignore[attr-defined]
                config={},
                environment={},
                metrics={},
                artifacts={},
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    yield ws
    ws.close()


def add(ws: Workspace, score: float, created_by: str = "trainer") -> int:
    return register_model(
        ws,
        run_id=ws.run_id,  # type: ignore[attr-defined]
        dataset_version_id=ws.dataset_version_id,  # type: ignore[attr-defined]
        architecture="ssdlite",
        weights_oid=ws.blobs.put_bytes(b"weights"),
        classes=CLASSES,
        imgsz=96,
        metrics=metrics(score),
        artifacts={"onnx": ws.blobs.put_bytes(b"onnx")},
        lineage={"run_id": 1, "dataset_version": "seed"},
        created_by=created_by,
    )


def test_the_model_loop_through_the_cli(project, capsys, monkeypatch) -> None:
    scores = {1: 0.50, 2: 0.40, 3: 0.55}
    monkeypatch.setattr(gate_module, "default_evaluate", lambda ws: lambda v, d, s: metrics(scores[v]))
    v1, v2 = add(project, 0.5), add(project, 0.4)

    def ok(*args: str) -> Any:
        code, out, err = run(capsys, monkeypatch, "model", *args, "--json")
        assert code == 0, (args, err)
        return json.loads(out)

    assert [(m["version"], m["status"], m["aliases"]) for m in ok("list")] == [
        (2, "registered", []),
        (1, "registered", []),
    ]
    gated = ok("gate", str(v1))
    assert (gated["status"], gated["passed"], gated["complete"]) == ("approved", True, True)
    event = ok("promote", "v1", "--by", "ann", "--reason", "first model")
    assert (event["alias"], event["from_version"], event["to_version"], event["actor"]) == (
        "production",
        None,
        1,
        "ann",
    )

    # v2 trails production by 0.100: gate_failed, exit 7, the report still printed
    code, out, _ = run(capsys, monkeypatch, "model", "gate", str(v2), "--json")
    report = json.loads(out)
    assert code == 7 and report["status"] == "gate_failed" and not report["passed"]
    (failed,) = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed["detail"] == "mAP50-95 0.400 is 0.100 below production v1 (0.500); allowed drop 0.010"

    # promoting it is refused with a typed error and exit 7
    code, out, err = run(capsys, monkeypatch, "model", "promote", str(v2), "--json")
    assert code == 7 and json.loads(out)["error"] == "PromotionError"
    assert "is `gate_failed`, not `approved`" in err and "Traceback" not in err

    v3 = add(project, 0.55, created_by="ann")
    set_status(project, v3, "awaiting_approval")
    code, out, _ = run(
        capsys, monkeypatch, "model", "approve", str(v3), "--by", "ann", "--reason", "mine", "--json"
    )
    assert code == 7 and json.loads(out)["error"] == "ApprovalError"
    approved = ok("approve", str(v3), "--by", "bob", "--reason", "checked the per-class AP")
    assert (approved["status"], approved["decided_by"]) == ("approved", "bob")
    ok("promote", str(v3), "--by", "bob", "--reason", "better")
    back = ok("rollback", "--by", "bob", "--reason", "v3 too slow")
    assert (back["action"], back["from_version"], back["to_version"]) == ("rollback", 3, 1)
    rejected = ok("reject", str(v2), "--by", "bob", "--reason", "regression")
    assert rejected["status"] == "rejected" and rejected["decision_reason"] == "regression"

    history = ok("history", "--alias", "production")
    assert [(e["action"], e["from_version"], e["to_version"]) for e in history] == [
        ("promote", None, 1),
        ("promote", 1, 3),
        ("rollback", 3, 1),
    ]
    assert [e["served_until"] for e in history] == [history[1]["created_at"], history[2]["created_at"], None]

    shown = ok("show", "production")
    assert shown["version"] == 1 and shown["aliases"] == ["production"]
    assert shown["paths"]["weights"] == str(project.blobs.path(shown["weights_oid"]))
    assert set(shown["paths"]) == {"weights", "onnx"}
    assert shown["gate_report"]["passed"] and shown["metrics"]["per_class"]["disc"]["ap"] == 0.5

    compared = ok("compare", "1", "3")
    assert compared["per_class"]["square"]["ap"] == {"a": 0.5, "b": 0.55, "delta": 0.05}
    assert compared["overall"]["map50_95"]["delta"] == 0.05


def test_every_command_renders_for_people(project, capsys, monkeypatch) -> None:
    monkeypatch.setattr(gate_module, "default_evaluate", lambda ws: lambda v, d, s: metrics(0.5))
    monkeypatch.setattr("visionloop.cli.out.width", 200, raising=False)
    add(project, 0.5), add(project, 0.5)
    set_status(project, 2, "awaiting_approval")
    for args, expected in [
        (["gate", "1"], "v1 is now approved"),
        (["promote", "1", "--reason", "first"], "production: v- → v1"),
        (["approve", "2", "--by", "bob", "--reason", "ok"], "v2 approved by bob"),
        (["promote", "2"], "production: v1 → v2"),
        (["rollback"], "rolled back v2 → v1"),
        (["reject", "2", "--by", "bob", "--reason", "no"], "v2 rejected by bob"),
        (["list"], "Model versions"),
        (["show", "1"], "Gate report (passed"),
        (["show", "2"], "Not gated yet"),
        (["compare", "1", "2"], "Per class"),
        (["history"], "History of 'production'"),
    ]:
        code, out, err = run(capsys, monkeypatch, "model", *args)
        assert code == 0, (args, err)
        assert expected in out, (args, out)
    code, out, _ = run(capsys, monkeypatch, "model", "show", "1")
    assert "no_regression" in out and "Metrics per class" in out and str(project.blobs.root) in out
    # check names with brackets are text, not console markup
    report = evaluate_gates(metrics(0.5), None, GatesConfig(min_class_ap={"square": 0.6}))
    set_gate_report(project, 2, report.to_dict())
    code, out, _ = run(capsys, monkeypatch, "model", "show", "2")
    assert "min_class_ap[square]" in out and "square AP 0.500 is 0.100 below the floor 0.600" in out


def test_model_errors_are_messages_with_exit_codes(project, capsys, monkeypatch) -> None:
    code, out, err = run(capsys, monkeypatch, "model", "show", "9", "--json")
    assert code == 7 and json.loads(out)["what"] == "no model version 9"
    code, _, err = run(capsys, monkeypatch, "model", "rollback")
    assert code == 7 and "alias 'production' has nothing to roll back to" in err and "Traceback" not in err
