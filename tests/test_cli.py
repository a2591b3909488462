from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from _helpers import run_cli
from visionloop import cli

ROOT = Path(__file__).resolve().parents[1]


run = run_cli


def _commands() -> list[list[str]]:
    group = typer.main.get_command(cli.app)
    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(cmd, "commands"):
            out += [[name, sub] for sub in cmd.commands]
        else:
            out.append([name])
    return out


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_has_help_and_is_documented(command: list[str], capsys, monkeypatch) -> None:
    code, out, _ = run(capsys, monkeypatch, *command, "--help")
    assert code == 0 and "Usage:" in out
    readme = (ROOT / "README.md").read_text()
    assert f"visionloop {' '.join(command)}" in readme, f"README does not document `{' '.join(command)}`"


def test_json_everywhere(tmp_path: Path, capsys, monkeypatch, synth_day: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, monkeypatch, "init", ".", "--json")
    assert code == 0 and json.loads(out)["classes"] == []
    code, out, _ = run(capsys, monkeypatch, "import", str(synth_day), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["images"]["new"] == 24 and report["format"] == "yolo"
    code, out, _ = run(capsys, monkeypatch, "dataset", "snapshot", "-m", "v1", "--keep-splits", "--json")
    v = json.loads(out)
    assert v["created"] and v["n_images"] == 24
    for args in (
        ["dataset", "list"],
        ["dataset", "show", v["short"]],
        ["dataset", "diff", v["id"], "latest"],
        ["fsck"],
    ):
        code, out, _ = run(capsys, monkeypatch, *args, "--json")
        assert code == 0, args
        json.loads(out)
    code, out, _ = run(
        capsys, monkeypatch, "dataset", "export", "latest", str(tmp_path / "o"), "--format", "voc", "--json"
    )
    assert json.loads(out)["images"] == 24


def test_user_errors_are_messages_with_exit_codes(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VISIONLOOP_WORKSPACE", raising=False)
    code, _, err = run(capsys, monkeypatch, "dataset", "list")
    assert code == 3
    assert "no visionloop workspace found" in err and "Traceback" not in err
    run(capsys, monkeypatch, "init")
    code, out, err = run(capsys, monkeypatch, "dataset", "show", "nonexistent", "--json")
    assert code == 6 and json.loads(out)["error"] == "VersionNotFoundError"
    code, _, err = run(capsys, monkeypatch, "import", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err


def test_workspace_option_and_synth(tmp_path: Path, capsys, monkeypatch) -> None:
    code, out, _ = run(
        capsys,
        monkeypatch,
        "synth",
        str(tmp_path / "s"),
        "--images",
        "6",
        "--size",
        "64",
        "--domain",
        "fog",
        "--json",
    )
    assert code == 0 and json.loads(out)["images"] == 6
    run(capsys, monkeypatch, "init", str(tmp_path / "p"))
    code, out, _ = run(
        capsys, monkeypatch, "--workspace", str(tmp_path / "p"), "import", str(tmp_path / "s"), "--json"
    )
    assert code == 0 and json.loads(out)["images"]["new"] == 6


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; import visionloop.cli; "
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'PIL', 'torch', 'alembic', 'pydantic') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
