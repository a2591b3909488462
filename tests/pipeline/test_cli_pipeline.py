"""`visionloop run`, `pipeline list|show` through the CLI; a monitoring signal handed in by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import run_cli
from visionloop.data.ingest import import_dataset
from visionloop.workspace import Workspace


def test_run_a_signal_once_then_list_and_show(
    loop_ws: Workspace,
    loop_data: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import_dataset(loop_ws, loop_data["day"])
    w = ["-w", str(loop_ws.root)]
    signal = ["--until", "snapshot", "--trigger", "drift", "--key", "drift:window-7", "--reason", "PSI 0.41"]
    code, out, err = run_cli(capsys, monkeypatch, *w, "run", *signal, "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["trigger"] == "drift" and run["detail"] == {"reason": "PSI 0.41"}
    assert [s["name"] for s in run["steps"]] == ["snapshot"]
    code, _, err = run_cli(capsys, monkeypatch, *w, "run", *signal)
    assert code == 8 and "drift:window-7" in err and "exists already" in err
    code, out, _ = run_cli(capsys, monkeypatch, *w, "pipeline", "list", "--json")
    assert code == 0 and [r["idempotency_key"] for r in json.loads(out)] == ["drift:window-7"]
    code, out, _ = run_cli(capsys, monkeypatch, *w, "pipeline", "show", str(run["id"]))
    assert code == 0 and "snapshot" in out and "drift" in out
    code, _, err = run_cli(capsys, monkeypatch, *w, "pipeline", "show", "99")
    assert code == 2 and "no pipeline run 99" in err
    code, _, err = run_cli(capsys, monkeypatch, *w, "run", "--trigger", "whim")
    assert code == 2 and "no trigger kind 'whim'" in err
