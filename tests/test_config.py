from __future__ import annotations

from pathlib import Path

import pytest

from visionloop.config import load_settings, render_settings
from visionloop.errors import ConfigError


def test_rendered_settings_parse_back(tmp_path: Path) -> None:
    f = tmp_path / "visionloop.toml"
    f.write_text(render_settings('odd "name"', ["a", 'b"c'], "sqlite:///x.db", "s3://bucket/p"))
    s = load_settings(f)
    assert s.project.name == 'odd "name"'
    assert s.project.classes == ("a", 'b"c')
    assert s.storage.database == "sqlite:///x.db"
    assert s.blob_url(tmp_path) == "s3://bucket/p"
    assert s.split.train == 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[split]\ntrain = 0.9\nval = 0.2\ntest = 0.1\n",
            "invalid setting `split`: Value error, split ratios must add up to 1, they add up to 1.2",
        ),
        ("[import]\nbox_tolerance_px = -1\n", "invalid setting `import.box_tolerance_px`"),
        ("[project]\nnme = 'typo'\n", "invalid setting `project.nme`"),
        ("[project\n", "not valid TOML"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "visionloop.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert expected in info.value.message
    assert str(f) in info.value.message


def test_environment_overrides_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "visionloop.toml"
    f.write_text(render_settings("p", []))
    s = load_settings(f)
    monkeypatch.setenv("VISIONLOOP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("VISIONLOOP_BLOB_URL", "s3://b/x")
    assert s.database_url(tmp_path) == "postgresql+psycopg://u@h/db"
    assert s.blob_url(tmp_path) == "s3://b/x"
