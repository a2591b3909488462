from __future__ import annotations

import pytest

from visionloop import errors


def test_message_says_what_where_and_what_to_do() -> None:
    e = errors.VersionNotFoundError("no dataset version 'abc'", where="/ws", fix="list them.")
    assert e.message == "no dataset version 'abc'. Where: /ws. Fix: list them."
    assert e.to_dict() == {
        "error": "VersionNotFoundError",
        "what": "no dataset version 'abc'",
        "where": "/ws",
        "fix": "list them.",
    }


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.UsageError, 2),
        (errors.WorkspaceNotFoundError, 3),
        (errors.ConfigError, 3),
        (errors.BlobCorruptError, 4),
        (errors.UnsafeArchiveError, 5),
        (errors.StrictImportError, 5),
        (errors.AmbiguousVersionError, 6),
        (errors.VisionloopError, 1),
    ],
)
def test_exit_codes_follow_the_tree(cls: type[errors.VisionloopError], code: int) -> None:
    assert cls("x").exit_code == code


def test_every_error_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.VisionloopError):
            assert name in doc, name
