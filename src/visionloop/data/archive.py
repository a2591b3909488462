"""Safe extraction of dataset archives (zip, tar) into an empty staging directory before import.

Every entry is checked before anything is written: no absolute paths or drive letters, nothing that
lands outside the staging directory, no links or special files, bounded entry count and size. Bytes
are counted again while writing, and on any error the staging directory is emptied again.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PureWindowsPath
from typing import TypeVar

from visionloop.errors import UnsafeArchiveError

__all__ = ["ARCHIVE_SUFFIXES", "extract_archive", "is_archive"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1 << 20
_READ_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    gzip.BadGzipFile,
    EOFError,
    NotImplementedError,
)
_OPEN_ERRORS = (*_READ_ERRORS, OSError)
_UNSAFE_FIX = "re-create the archive with relative paths only, and no links or special files"
_H = TypeVar("_H", zipfile.ZipInfo, tarfile.TarInfo)
_Plan = list[tuple[Path, bool, _H]]  # (resolved target, is a directory, archive member)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    return "tar" if name.endswith(ARCHIVE_SUFFIXES) else None


def is_archive(path: Path) -> bool:
    """True if ``path`` has an archive name (see ``ARCHIVE_SUFFIXES``) and its content matches it."""
    kind = _kind(path)
    if kind is None or not path.is_file():
        return False
    try:
        return zipfile.is_zipfile(path) if kind == "zip" else tarfile.is_tarfile(path)
    except OSError:
        return False


def _unsafe(archive: Path, name: str, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"archive entry {name!r} {what}", where=f"{archive}, entry {name!r}", fix=_UNSAFE_FIX
    )


def _too_big(archive: Path, name: str, cap: int) -> UnsafeArchiveError:
    what = f"the archive unpacks to more than {cap} bytes"
    return UnsafeArchiveError(
        what, where=f"{archive}, entry {name!r}", fix="split the dataset into smaller archives"
    )


def _target(archive: Path, name: str, root: Path) -> Path | None:
    """The resolved destination of entry ``name`` under ``root``; None for macOS junk. Raises if unsafe."""
    win = PureWindowsPath(name)  # splits on both "/" and "\\", and knows drive letters
    if win.drive or win.root or name.startswith("/"):
        raise _unsafe(archive, name, "has an absolute path or a drive letter")
    if "__MACOSX" in win.parts or (win.parts and (win.name.startswith("._") or win.name == ".DS_Store")):
        return None
    target = root.joinpath(*win.parts).resolve()
    if not target.is_relative_to(root):
        raise _unsafe(archive, name, "would be written outside the extraction directory")
    return target


def _plan(
    archive: Path, entries: Iterable[tuple[str, str, int, _H]], root: Path, cap: int, limit: int
) -> _Plan[_H]:
    """Check every entry (name, "file" | "dir" | why it is refused, declared size, member) up front."""
    plan: _Plan[_H] = []
    total = 0
    for count, (name, kind, size, member) in enumerate(entries, 1):
        if count > limit:
            fix = "split the dataset into smaller archives"
            raise UnsafeArchiveError(
                f"the archive has more than {limit} entries", where=str(archive), fix=fix
            )
        target = _target(archive, name, root)
        if target is None:
            continue
        if kind not in ("file", "dir"):
            raise _unsafe(archive, name, kind)
        if kind == "file":
            if target == root:
                raise _unsafe(archive, name, "has no file name")
            total += size
            if total > cap:
                raise _too_big(archive, name, cap)
        if target != root:
            plan.append((target, kind == "dir", member))
    return plan


def _zip_entries(zf: zipfile.ZipFile) -> Iterator[tuple[str, str, int, zipfile.ZipInfo]]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            kind = "is a symbolic link"
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "is a device, fifo or socket"
        elif info.is_dir():
            kind = "dir"
        else:
            kind = "is password-protected" if info.flag_bits & 0x1 else "file"
        yield info.filename, kind, info.file_size, info


def _tar_entries(tf: tarfile.TarFile) -> Iterator[tuple[str, str, int, tarfile.TarInfo]]:
    for member in tf:
        if member.issym() or member.islnk():
            kind = "is a symbolic link" if member.issym() else "is a hard link"
        else:
            kind = (
                "dir" if member.isdir() else "file" if member.isreg() else "is a device, fifo or special file"
            )
        yield member.name, kind, member.size, member


@contextmanager
def _reading(archive: Path, errors: tuple[type[BaseException], ...] = _OPEN_ERRORS) -> Iterator[None]:
    """Turn ``errors`` raised while reading the archive into UnsafeArchiveError (cannot read it)."""
    try:
        yield
    except errors as exc:
        fix = "re-create the archive; it is corrupt, truncated or uses an unsupported compression"
        detail = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")
        raise UnsafeArchiveError(f"cannot read the archive ({detail})", where=str(archive), fix=fix) from exc


def _extract_zip(archive: Path, root: Path, cap: int, limit: int) -> None:
    with _reading(archive):
        zf = zipfile.ZipFile(archive)
    with zf:
        with _reading(archive):
            plan = _plan(archive, _zip_entries(zf), root, cap, limit)
        written = 0
        for target, is_dir, info in plan:
            (target if is_dir else target.parent).mkdir(parents=True, exist_ok=True)
            if is_dir:
                continue
            if not target.parent.resolve().is_relative_to(root):  # belt and braces: nothing may escape
                raise _unsafe(archive, info.filename, "would be written outside the extraction directory")
            with _reading(archive, _READ_ERRORS), zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)  # headers can lie about sizes: count what really comes out
                    if written > cap:
                        raise _too_big(archive, info.filename, cap)
                    dst.write(chunk)


def _extract_tar(archive: Path, root: Path, cap: int, limit: int) -> None:
    with _reading(archive):
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with block below
    with tf:
        with _reading(archive):
            plan = _plan(archive, _tar_entries(tf), root, cap, limit)
        written = 0
        for target, is_dir, member in plan:
            normalized = member.replace(name=target.relative_to(root).as_posix(), deep=False)
            with _reading(archive, _READ_ERRORS):
                try:
                    tf.extract(normalized, root, set_attrs=False, filter="data")
                except tarfile.FilterError as exc:  # our checks come first; the data filter is a second line
                    raise _unsafe(archive, member.name, f"is refused by the tar data filter ({exc})") from exc
            if not is_dir:
                written += target.lstat().st_size
                if written > cap:
                    raise _too_big(archive, member.name, cap)


def _clear(root: Path) -> None:
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def extract_archive(
    path: Path, staging: Path, *, max_total_bytes: int = 20 * 2**30, max_entries: int = 1_000_000
) -> Path:
    """Extract ``path`` into the existing empty directory ``staging`` and return the dataset root.

    The root is the single top-level directory when the archive holds nothing else, else ``staging``.
    macOS junk (``__MACOSX/``, ``._*``, ``.DS_Store``) is skipped. Raises :class:`UnsafeArchiveError`
    for an unsafe, oversized or unreadable archive, and then leaves ``staging`` empty.
    """
    kind = _kind(path)
    if kind is None:
        fix = "pass a " + ", ".join(ARCHIVE_SUFFIXES) + " file"
        raise UnsafeArchiveError("the file is not a supported archive", where=str(path), fix=fix)
    if not staging.is_dir() or any(staging.iterdir()):
        raise ValueError(f"staging must be an existing empty directory: {staging}")
    root = staging.resolve()
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(path, root, max_total_bytes, max_entries)
    except BaseException:
        _clear(root)
        raise
    children = list(staging.iterdir())
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        return children[0]
    return staging
