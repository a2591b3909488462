"""deploy/ci/pipeline.yml: a GitHub Actions workflow that runs `visionloop run` on a schedule and on
demand, against the workspace its secrets name."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "ci" / "pipeline.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    return dict(workflow.get("on") or workflow[True])  # YAML 1.1 reads a bare `on` key as true


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return list(job["steps"])


def test_it_runs_on_a_schedule_and_on_demand(workflow: dict[str, Any]) -> None:
    triggers = _triggers(workflow)
    crons = [entry["cron"] for entry in triggers["schedule"]]
    assert crons and all(croniter.is_valid(c) for c in crons)
    assert "workflow_dispatch" in triggers
    assert workflow["concurrency"]["cancel-in-progress"] is False  # a training run is never cut short


def test_it_runs_the_pipeline_with_options_the_cli_has(
    workflow: dict[str, Any], cli_options: Callable[..., set[str]]
) -> None:
    (script,) = [s["run"] for s in _steps(workflow) if "visionloop run" in s.get("run", "")]
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", script))
    assert used and used <= cli_options("run"), used - cli_options("run")
    assert "--key" in used  # one pipeline run per workflow attempt, whatever retries the runner makes


def test_the_workspace_comes_from_secrets(workflow: dict[str, Any]) -> None:
    (job,) = workflow["jobs"].values()
    env = job["env"]
    for name in ("VISIONLOOP_DATABASE_URL", "VISIONLOOP_BLOB_URL"):
        assert env[name] == f"${{{{ secrets.{name} }}}}"
    settings = next(s for s in _steps(workflow) if "VISIONLOOP_TOML" in s.get("env", {}))
    assert settings["env"]["VISIONLOOP_TOML"] == "${{ secrets.VISIONLOOP_TOML }}"
    assert '"$VISIONLOOP_WORKSPACE/visionloop.toml"' in settings["run"]
    assert workflow["permissions"] == {"contents": "read"}


def test_it_installs_the_pinned_cpu_torch_and_the_train_extra(workflow: dict[str, Any]) -> None:
    install = next(s["run"] for s in _steps(workflow) if "pip install" in s.get("run", ""))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for text in pyproject["project"]["optional-dependencies"]["train"]:
        req = Requirement(text)
        if req.name in {"torch", "torchvision"}:
            assert f"{req.name}{req.specifier}" in install
    assert "download.pytorch.org/whl/cpu" in install and '".[train,scale]"' in install


def _check_against_the_actions_schema(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its bundled GitHub workflow schema (offline)."""
    exe = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    )
    if exe is None:
        pytest.skip("check-jsonschema is not installed (part of the dev extra)")
    cmd = [exe, "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_the_workflow_matches_the_github_actions_schema() -> None:
    res = _check_against_the_actions_schema(WORKFLOW)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_schema_check_would_catch_a_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "run-on:"), encoding="utf-8")
    assert _check_against_the_actions_schema(bad).returncode != 0
