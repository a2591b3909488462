"""Tests of safe archive extraction: archives are built programmatically in tmp_path."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from visionloop.data import archive
from visionloop.data.archive import extract_archive, is_archive
from visionloop.errors import UnsafeArchiveError

# --- builders ---------------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    assert sorted(zipfile.ZipFile(path).namelist()) == sorted(entries)  # names were stored verbatim
    return path


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith((".gz", ".tgz")) else "w") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _make(path: Path, files: dict[str, bytes]) -> Path:
    if path.suffix == ".zip":
        return _zip(path, files)
    return _tar(path, [(_member(name, data), data) for name, data in files.items()])


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "staging"
    out.mkdir(parents=True)
    return out


def _snapshot(tmp_path: Path) -> set[Path]:
    return set(tmp_path.rglob("*"))


def _refused(path: Path, staging: Path, tmp_path: Path, match: str, **limits: int) -> UnsafeArchiveError:
    """Extract, expect a refusal naming ``match``, and check nothing was written anywhere."""
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_archive(path, staging, **limits)
    assert match in str(caught.value)
    assert list(staging.iterdir()) == []
    assert _snapshot(tmp_path) == before
    return caught.value


# --- happy paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ds.zip", "ds.tar.gz", "ds.tgz", "ds.tar"])
def test_extracts_normal_archive(tmp_path: Path, staging: Path, name: str) -> None:
    path = _make(tmp_path / name, {"images/a.jpg": b"jpeg", "labels/a.txt": b"0 0.5 0.5 1 1\n"})
    assert is_archive(path)
    assert extract_archive(path, staging) == staging
    assert (staging / "images" / "a.jpg").read_bytes() == b"jpeg"
    assert (staging / "labels" / "a.txt").read_text() == "0 0.5 0.5 1 1\n"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
@pytest.mark.parametrize(
    ("files", "root"),
    [
        ({"ds/a.txt": b"a", "ds/sub/b.txt": b"b"}, "ds"),
        ({"a.txt": b"a", "sub/b.txt": b"b"}, "."),
        ({"ds/a.txt": b"a", "top.txt": b"t"}, "."),
        ({"ds/a.txt": b"a", "__MACOSX/ds/._a.txt": b"x", "ds/._a.txt": b"x", "ds/.DS_Store": b"x"}, "ds"),
        ({"ds/x/../a.txt": b"a"}, "ds"),  # ".." that stays inside is fine
    ],
)
def test_dataset_root_detection(
    tmp_path: Path, staging: Path, suffix: str, files: dict[str, bytes], root: str
) -> None:
    got = extract_archive(_make(tmp_path / f"ds{suffix}", files), staging)
    assert got == staging / root if root != "." else got == staging
    names = {p.name for p in staging.rglob("*")}
    assert "a.txt" in names
    assert not names & {"__MACOSX", "._a.txt", ".DS_Store"}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("ds.zip", "zip", True),
        ("ds.tgz", "tar", True),
        ("ds.tar.gz", "zip", False),
        ("ds.zip", "text", False),
        ("ds.txt", "zip", False),
    ],
)
def test_is_archive(tmp_path: Path, name: str, content: str, expected: bool) -> None:
    path = tmp_path / name
    if content == "text":
        path.write_text("not an archive")
    else:
        built = _make(tmp_path / ("x.zip" if content == "zip" else "x.tgz"), {"a.txt": b"a"})
        path.write_bytes(built.read_bytes())
    assert is_archive(path) is expected
    assert not is_archive(tmp_path / "missing.zip")


# --- unsafe archives --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "symlink"),
    [("../evil.txt", False), ("ds/../../evil.txt", False), ("C:/evil.txt", False), ("ds/link", True)],
)
def test_zip_unsafe_entry_refused(tmp_path: Path, staging: Path, entry: str, symlink: bool) -> None:
    links = (entry,) if symlink else ()
    path = _zip(tmp_path / "bad.zip", {"ds/ok.txt": b"ok", entry: b"/etc/passwd"}, symlinks=links)
    err = _refused(path, staging, tmp_path, entry)
    assert err.where is not None and str(path) in err.where


def test_zip_absolute_entry_refused(tmp_path: Path, staging: Path) -> None:
    evil = tmp_path / "evil.txt"  # an absolute /tmp/... path
    path = _zip(tmp_path / "bad.zip", {"ok.txt": b"ok", str(evil): b"evil"})
    _refused(path, staging, tmp_path, str(evil))
    assert not evil.exists()


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        (_member("ds/link", kind=tarfile.SYMTYPE, link="../../secret"), "ds/link"),
        (_member("ds/abs", kind=tarfile.SYMTYPE, link="/etc/passwd"), "ds/abs"),
        (_member("../evil.txt", b"evil"), "../evil.txt"),
        (_member("/tmp/evil-visionloop.txt", b"evil"), "/tmp/evil-visionloop.txt"),
        (_member("ds/hard", kind=tarfile.LNKTYPE, link="ds/ok.txt"), "ds/hard"),
        (_member("ds/fifo", kind=tarfile.FIFOTYPE), "ds/fifo"),
        (_member("ds/dev", kind=tarfile.CHRTYPE), "ds/dev"),
    ],
)
def test_tar_unsafe_entry_refused(tmp_path: Path, staging: Path, bad: tarfile.TarInfo, name: str) -> None:
    data = b"evil" if bad.isreg() else b""
    # a good file first, and a file written "through" the link after it: nothing at all may be written
    members = [(_member("ds/ok.txt", b"ok"), b"ok"), (bad, data), (_member(f"{name}/x", b"x"), b"x")]
    path = _tar(tmp_path / "bad.tar.gz", members)
    _refused(path, staging, tmp_path, name)
    assert not Path("/tmp/evil-visionloop.txt").exists()


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_too_many_entries_refused(tmp_path: Path, staging: Path, suffix: str) -> None:
    path = _make(tmp_path / f"many{suffix}", {f"ds/{i}.txt": b"x" for i in range(5)})
    _refused(path, staging, tmp_path, "more than 3 entries", max_entries=3)
    assert extract_archive(path, staging, max_entries=5) == staging / "ds"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_declared_size_over_cap_refused(tmp_path: Path, staging: Path, suffix: str) -> None:
    path = _make(tmp_path / f"bomb{suffix}", {"ds/small.txt": b"s", "ds/zeros.bin": bytes(10 * 1024)})
    _refused(path, staging, tmp_path, "more than 1024 bytes", max_total_bytes=1024)


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_real_size_over_cap_refused_while_writing(
    tmp_path: Path, staging: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers that under-declare sizes are caught by counting the bytes actually written."""
    path = _make(tmp_path / f"bomb{suffix}", {"ds/small.txt": b"s", "ds/zeros.bin": bytes(10 * 1024)})
    for fn in ("_zip_entries", "_tar_entries"):
        real = getattr(archive, fn)

        def lying(handle: object, real: object = real) -> Iterator[tuple[str, str, int, object]]:
            for name, kind, _size, member in real(handle):  # type: ignore[operator]
                yield name, kind, 0, member

        monkeypatch.setattr(archive, fn, lying)
    _refused(path, staging, tmp_path, "more than 1024 bytes", max_total_bytes=1024)


def test_zip_with_lying_header_refused(tmp_path: Path, staging: Path) -> None:
    raw = bytearray(_zip(tmp_path / "x.zip", {"zeros.bin": bytes(10 * 1024)}).read_bytes())
    small = (100).to_bytes(4, "little")
    raw[22:26] = small  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = small  # central directory: uncompressed size
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(raw))
    # CPython stops reading at the declared size, so the CRC check fails: refused as unreadable
    _refused(path, staging, tmp_path, "cannot read the archive", max_total_bytes=1024)


# --- unreadable archives ----------------------------------------------------------------------


def _corrupt(tmp_path: Path, how: str) -> Path:
    if how == "garbage.zip" or how == "garbage.tar.gz":
        (tmp_path / how).write_bytes(b"this is not an archive at all" * 10)
        return tmp_path / how
    good = _make(
        tmp_path / ("good.zip" if how == "crc.zip" else "good.tar.gz"), {"a.bin": bytes(range(256)) * 64}
    )
    raw = bytearray(good.read_bytes())
    if how == "crc.zip":
        raw[40] ^= 0xFF  # inside the compressed data of the only entry
    else:
        raw = raw[: len(raw) // 2]
    (tmp_path / how).write_bytes(bytes(raw))
    return tmp_path / how


@pytest.mark.parametrize("how", ["garbage.zip", "garbage.tar.gz", "crc.zip", "truncated.tar.gz"])
def test_corrupt_archive_refused(tmp_path: Path, staging: Path, how: str) -> None:
    err = _refused(_corrupt(tmp_path, how), staging, tmp_path, "cannot read the archive")
    assert err.fix is not None and "re-create" in err.fix


def test_unsupported_file_and_non_empty_staging(tmp_path: Path, staging: Path) -> None:
    (tmp_path / "ds.rar").write_bytes(b"Rar!")
    _refused(tmp_path / "ds.rar", staging, tmp_path, "not a supported archive")
    (staging / "keep.txt").write_text("keep")
    with pytest.raises(ValueError, match="empty directory"):
        extract_archive(_make(tmp_path / "ds.zip", {"a.txt": b"a"}), staging)
    assert (staging / "keep.txt").read_text() == "keep"
