"""``visionloop user add|list|token`` and ``visionloop ui --help``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from _helpers import run_cli
from visionloop.ui.auth import authenticate, user_for_token
from visionloop.workspace import open_workspace


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, monkeypatch, "init", ".")[0] == 0
    return tmp_path


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_user_add_list_token(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, "a long password\n")
    code, out, _ = run_cli(
        capsys, monkeypatch, "user", "add", "ana", "--role", "approver", "--password-stdin", "--json"
    )
    assert code == 0 and json.loads(out)["role"] == "approver"
    code, out, _ = run_cli(capsys, monkeypatch, "user", "list", "--json")
    assert code == 0 and [u["name"] for u in json.loads(out)] == ["ana"]
    code, out, err = run_cli(capsys, monkeypatch, "user", "token", "ana", "--label", "ci")
    token = out.strip()
    assert code == 0 and token.startswith("vl_") and "shown once" in err
    with open_workspace(project) as ws:
        assert authenticate(ws, "ana", "a long password") is not None
        user = user_for_token(ws, token)
        assert user is not None and user.name == "ana"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "add", "bo", "--role", "root", "--password-stdin"], "a long password\n", "unknown role"),
        (["user", "add", "bo", "--role", "viewer", "--password-stdin"], "short\n", "shorter than 8"),
        (["user", "token", "nobody"], "", "no user named"),
    ],
)
def test_user_mistakes_are_clear_errors(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    _stdin(monkeypatch, stdin)
    code, _, err = run_cli(capsys, monkeypatch, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_prompted_passwords_must_match(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _stdin(monkeypatch, "first password\nsecond password\n")
    code, _, err = run_cli(capsys, monkeypatch, "user", "add", "cy", "--role", "viewer")
    assert code == 2 and "differ" in err


def test_ui_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "ui", "--help")
    assert code == 0 and "127.0.0.1" in out and "--port" in out
