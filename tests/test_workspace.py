from __future__ import annotations

from pathlib import Path

import pytest

from visionloop.errors import UsageError, WorkspaceExistsError, WorkspaceNotFoundError
from visionloop.workspace import ENV_VAR, find_workspace, init_workspace, open_workspace


def test_init_creates_settings_database_and_blob_store(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path, classes=["cat", "dog"])
    assert ws.root == tmp_path.resolve() / ".visionloop"
    assert (ws.root / "visionloop.toml").is_file()
    assert (ws.root / "visionloop.db").is_file()
    assert (ws.root / "blobs").is_dir()
    assert ws.classes() == ["cat", "dog"]
    assert ws.settings.project.name == tmp_path.name


def test_init_twice_is_refused(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    with pytest.raises(WorkspaceExistsError, match="already exists"):
        init_workspace(tmp_path)


@pytest.mark.parametrize("bad", ["", " padded", "tab\there", "x" * 201])
def test_bad_class_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="invalid class name"):
        init_workspace(tmp_path, classes=[bad])


def test_discovery_walks_up_like_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert find_workspace() == tmp_path.resolve() / ".visionloop"


def test_explicit_path_may_name_project_or_workspace(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    assert find_workspace(tmp_path) == find_workspace(tmp_path / ".visionloop")


def test_environment_variable_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path / "p")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "p"))
    monkeypatch.chdir(tmp_path)
    assert open_workspace().root == (tmp_path / "p" / ".visionloop").resolve()


def test_no_workspace_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(WorkspaceNotFoundError) as info:
        find_workspace()
    assert "visionloop init" in info.value.message


def test_classes_added_to_the_settings_file_appear(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path, classes=["cat"])
    toml = ws.root / "visionloop.toml"
    toml.write_text(toml.read_text().replace('classes = ["cat"]', 'classes = ["cat", "dog"]'))
    assert open_workspace(tmp_path).classes() == ["cat", "dog"]


def test_add_classes_never_reorders(ws) -> None:
    assert ws.add_classes(["b", "a"]) == ["b", "a"]
    assert ws.add_classes(["a", "c"]) == ["b", "a", "c"]
