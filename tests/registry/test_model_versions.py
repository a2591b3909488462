from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from visionloop.errors import (
    BlobNotFoundError,
    ModelError,
    ModelNotFoundError,
    StoreError,
    VersionNotFoundError,
)
from visionloop.registry import versions
from visionloop.registry.aliases import promote
from visionloop.registry.versions import (
    compare_models,
    get_model,
    list_models,
    register_model,
    set_gate_report,
    set_status,
)
from visionloop.store import schema


def test_register_and_read_back(models) -> None:
    ws = models.ws
    assert models() == 1
    artifact = ws.blobs.put_bytes(b"onnx")
    assert models(created_by="bob", artifacts={"onnx": artifact}) == 2
    m = get_model(ws, 2)
    assert (m.version, m.status, m.run_id, m.created_by) == (2, "registered", models.run_id, "bob")
    assert m.dataset_version_id == models.dataset_version_id and m.weights_oid == models.weights_oid
    assert m.classes == ["disc", "square", "triangle", "cross"] and m.imgsz == 96
    assert m.artifacts == {"onnx": artifact} and m.lineage == {"run_id": models.run_id}
    assert m.metrics["per_class"]["disc"]["ap"] == 0.5
    assert m.gate_report is None and m.decided_by is None and m.created_at.tzinfo is not None
    assert [x.version for x in list_models(ws)] == [2, 1]
    assert json.loads(json.dumps(m.to_dict()))["version"] == 2


def test_a_dataset_version_prefix_is_resolved_to_its_id(models) -> None:
    v = models(dataset_version_id=models.dataset_version_id[:10])
    assert get_model(models.ws, v).dataset_version_id == models.dataset_version_id


def test_the_weights_blob_must_exist(models) -> None:
    with pytest.raises(BlobNotFoundError) as e:
        register_model(
            models.ws,
            run_id=models.run_id,
            dataset_version_id=models.dataset_version_id,
            architecture="ssdlite",
            weights_oid="ab" * 32,
            classes=["a"],
            imgsz=96,
            metrics={},
            artifacts={},
            lineage={},
            created_by=None,
        )
    assert e.value.what == "the weights blob 'abababababab' is not in the blob store"
    assert list_models(models.ws) == []


def test_artifact_blobs_must_exist_too(models) -> None:
    with pytest.raises(BlobNotFoundError, match="the onnx blob 'cdcdcdcdcdcd' is not in the blob store"):
        models(artifacts={"onnx": "cd" * 32})


def test_unknown_run_and_dataset_version(models) -> None:
    kwargs = {
        "dataset_version_id": models.dataset_version_id,
        "architecture": "ssdlite",
        "weights_oid": models.weights_oid,
        "classes": ["a"],
        "imgsz": 96,
        "metrics": {},
        "artifacts": {},
        "lineage": {},
        "created_by": None,
    }
    with pytest.raises(ModelError, match="cannot register a model of run 99: there is no such run"):
        register_model(models.ws, run_id=99, **kwargs)  # type: ignore[arg-type]
    kwargs["dataset_version_id"] = "fffffff"
    with pytest.raises(VersionNotFoundError):
        register_model(models.ws, run_id=models.run_id, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", [2, "2", "v2", " v2 ", "production"])
def test_get_model_by_number_or_alias(models, ref) -> None:
    models(), models()
    set_status(models.ws, 2, "approved")
    promote(models.ws, 2, actor="ci", reason="first")
    assert get_model(models.ws, ref).version == 2


def test_unknown_model_or_alias(models) -> None:
    models()
    with pytest.raises(ModelNotFoundError) as e:
        get_model(models.ws, 7)
    assert e.value.what == "no model version 7"
    with pytest.raises(ModelNotFoundError) as e:
        get_model(models.ws, "production")
    assert e.value.what == "no alias 'production' names a model version"
    assert "visionloop model promote V --alias production" in (e.value.fix or "")


def test_a_stale_maximum_is_retried(models, monkeypatch) -> None:
    """Another writer took the number between our max() and our insert: try again with a fresh max."""
    models()
    real, calls = versions._max_version, []

    def stale_once(conn):
        calls.append(1)
        return 0 if len(calls) == 1 else real(conn)

    monkeypatch.setattr(versions, "_max_version", stale_once)
    assert models() == 2 and len(calls) == 2


def test_retries_are_bounded(models, monkeypatch) -> None:
    models()
    monkeypatch.setattr(versions, "_max_version", lambda conn: 0)
    monkeypatch.setattr(versions.time, "sleep", lambda s: None)
    with pytest.raises(StoreError, match=f"after {versions._MAX_TRIES} tries"):
        models()


def test_status_and_gate_report_updates(models) -> None:
    v = models()
    m = set_status(models.ws, v, "awaiting_approval", expected=("registered",))
    assert m.status == "awaiting_approval"
    with pytest.raises(ModelError, match="is `awaiting_approval`, not `registered`"):
        set_status(models.ws, v, "approved", expected=("registered",))
    m = set_gate_report(models.ws, v, {"checks": [], "passed": True, "complete": True}, status="approved")
    assert m.status == "approved" and m.gate_report == {"checks": [], "passed": True, "complete": True}
    m = set_status(models.ws, v, "rejected", decided_by="ann", reason="bad boxes")
    assert (m.decided_by, m.decision_reason) == ("ann", "bad boxes") and m.decided_at is not None


def test_compare_models(models) -> None:
    a = models(metrics=models.metrics(0.40, square=0.30))
    b = models(metrics=models.metrics(0.45, square=0.50))
    d = compare_models(models.ws, a, b)
    assert d["overall"]["map50_95"] == {"a": 0.40, "b": 0.45, "delta": 0.05}
    assert d["per_class"]["square"]["ap"] == {"a": 0.30, "b": 0.50, "delta": 0.2}
    assert d["same_dataset_version"] is True


WORKER = """
import sys, time
from pathlib import Path
from visionloop.registry.versions import register_model
from visionloop.workspace import open_workspace

root, go, dv, run, weights, n = sys.argv[1:]
ws = open_workspace(root)
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.005)
for _ in range(int(n)):
    v = register_model(ws, run_id=int(run), dataset_version_id=dv, architecture="ssdlite",
                       weights_oid=weights, classes=["disc"], imgsz=96, metrics={}, artifacts={},
                       lineage={}, created_by="process")
    print(v, flush=True)
"""


def test_concurrent_registrations_get_distinct_consecutive_versions(any_models, tmp_path: Path) -> None:
    """8 threads and 4 processes register at once: every version is taken exactly once, 1..N."""
    ws, go = any_models.ws, tmp_path / "go"
    args = [
        str(ws.root),
        str(go),
        any_models.dataset_version_id,
        str(any_models.run_id),
        any_models.weights_oid,
    ]
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, *args, "4"], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    barrier, got, errors = threading.Barrier(8), [], []

    def thread() -> None:
        try:
            barrier.wait()
            got.extend(any_models() for _ in range(3))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=thread) for _ in range(8)]
    go.touch()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        rest, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        got.extend(int(line) for line in rest.split())
    assert errors == []
    assert sorted(got) == list(range(1, 8 * 3 + 4 * 4 + 1))
    with ws.engine.connect() as conn:
        stored = conn.execute(select(schema.model_versions.c.version)).scalars().all()
    assert sorted(stored) == sorted(got)
