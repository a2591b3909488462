"""The content-addressed blob store: immutable bytes named by their sha256.

Layout ``<root>/ab/cdef…`` (the first two hex digits name a folder). A local
root gets atomic writes (temp file, fsync, rename) and a :meth:`BlobStore.flush`
that fsyncs the touched folders, called before any row naming the blobs is
committed. Any other fsspec URL (``s3://…``, ``memory://…``) goes through fsspec,
whose object stores publish a whole object or nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from visionloop.errors import BlobCorruptError, BlobNotFoundError, StoreError

HEX = frozenset("0123456789abcdef")


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path`` (Linux ``syncfs``), else every filesystem (``sync``)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_oid(text: str) -> bool:
    return len(text) == 64 and set(text) <= HEX


class BlobStore:
    """Immutable bytes by sha256; see the module docstring."""

    def __init__(self, url: str, tmp_dir: Path | None = None, options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.local = "://" not in url or url.startswith("file://")
        self._lock = threading.Lock()
        self._dirty_dirs: set[str] = set()
        self._staged: dict[str, Path | None] = {}
        if self.local:
            self.root = Path(url.removeprefix("file://"))
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp = tmp_dir or self.root / "tmp"
            self.tmp.mkdir(parents=True, exist_ok=True)
            self.fs: Any = None
        else:
            import fsspec

            try:
                self.fs, self._root_path = fsspec.core.url_to_fs(url, **(options or {}))
                self.fs.makedirs(self._root_path, exist_ok=True)
            except (ImportError, ValueError, OSError) as exc:
                raise StoreError(
                    f"cannot open blob store {url!r} ({exc})",
                    where="storage.blobs",
                    fix="install the fsspec backend for this URL (e.g. the `scale` extra "
                    "for s3://) or fix the URL",
                ) from None

    # -- naming ---------------------------------------------------------
    def _rel(self, oid: str) -> str:
        if not is_oid(oid):
            raise BlobNotFoundError(f"{oid!r} is not a blob id (64 lowercase hex digits)")
        return f"{oid[:2]}/{oid[2:]}"

    def path(self, oid: str) -> Path:
        """Local path of a blob (local stores only)."""
        if not self.local:
            raise StoreError("blob paths exist only for a local blob store", where=self.url)
        return self.root / self._rel(oid)

    def _remote(self, oid: str) -> str:
        return f"{self._root_path.rstrip('/')}/{self._rel(oid)}"

    # -- writing --------------------------------------------------------
    def _write_tmp(self, oid: str, data: bytes, fsync: bool) -> Path:
        tmp = self.tmp / f"{oid}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def _publish(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)
        with self._lock:
            self._dirty_dirs.add(str(final.parent))

    def put_bytes(self, data: bytes, oid: str | None = None) -> str:
        """Store ``data`` (idempotent) and return its oid: temp file, fsync, rename."""
        oid = oid or sha256_hex(data)
        if self.local:
            final = self.path(oid)
            if not final.exists():
                self._publish(self._write_tmp(oid, data, fsync=True), final)
        else:
            path = self._remote(oid)
            if not self.fs.exists(path):
                self.fs.pipe_file(path, data)
        return oid

    def stage(self, data: bytes, oid: str | None = None) -> str:
        """Write ``data`` as a temp file to be published by :meth:`publish_staged` (for bulk writes:
        one filesystem sync for the whole batch instead of one fsync per blob). Thread-safe."""
        oid = oid or sha256_hex(data)
        if not self.local:
            return self.put_bytes(data, oid)
        if self.path(oid).exists():
            return oid
        with self._lock:
            if oid in self._staged:
                return oid
            self._staged[oid] = None
        tmp = self._write_tmp(oid, data, fsync=False)
        with self._lock:
            self._staged[oid] = tmp
        return oid

    def publish_staged(self) -> int:
        """Make every staged blob durable (one ``sync``), then rename each into place and fsync the
        folders: the same guarantee as :meth:`put_bytes`, paid once. Returns how many were published."""
        with self._lock:
            staged, self._staged = self._staged, {}
        ready = [(oid, tmp) for oid, tmp in staged.items() if tmp is not None]
        if not ready:
            return 0
        _syncfs(self.tmp)  # the data of every staged file
        for oid, tmp in ready:
            self._publish(tmp, self.path(oid))
        _syncfs(self.root)  # every rename (one call instead of an fsync per folder)
        with self._lock:
            self._dirty_dirs.clear()
        return len(ready)

    def flush(self) -> None:
        """Make every rename since the last flush durable (fsync the folders)."""
        if not self.local:
            return
        with self._lock:
            dirs, self._dirty_dirs = self._dirty_dirs, set()
        for d in sorted(dirs):
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def discard_staged(self) -> None:
        """Remove staged blobs that were never published (the import that staged them failed)."""
        with self._lock:
            staged, self._staged = self._staged, {}
        for tmp in staged.values():
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def delete(self, oid: str) -> None:
        """Remove a blob (only garbage collection of unreferenced blobs calls this)."""
        if self.local:
            self.path(oid).unlink(missing_ok=True)
        elif self.fs.exists(self._remote(oid)):
            self.fs.rm_file(self._remote(oid))

    # -- reading --------------------------------------------------------
    def has(self, oid: str) -> bool:
        return self.path(oid).exists() if self.local else bool(self.fs.exists(self._remote(oid)))

    def get(self, oid: str, verify: bool = False) -> bytes:
        try:
            data: bytes = self.path(oid).read_bytes() if self.local else self.fs.cat_file(self._remote(oid))
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or not self.has(oid):
                raise BlobNotFoundError(
                    f"blob {oid[:12]} is missing",
                    where=self.url,
                    fix="run `visionloop fsck` to list every missing blob",
                ) from None
            raise
        if verify and sha256_hex(data) != oid:
            raise BlobCorruptError(
                f"blob {oid[:12]} does not match its hash",
                where=self.url,
                fix="restore it from a backup or re-import its source",
            )
        return data

    def size(self, oid: str) -> int:
        return self.path(oid).stat().st_size if self.local else int(self.fs.size(self._remote(oid)))

    def __iter__(self) -> Iterator[str]:
        """Every stored oid (temp files excluded)."""
        if self.local:
            for sub in sorted(self.root.iterdir()):
                if len(sub.name) == 2 and sub.is_dir():
                    for f in sub.iterdir():
                        oid = sub.name + f.name
                        if is_oid(oid):
                            yield oid
        else:
            root = self._root_path.rstrip("/")
            for path in self.fs.find(root):
                rel = path[len(root) :].strip("/").replace("/", "")
                if is_oid(rel):
                    yield rel

    def temp_files(self) -> list[Path]:
        """Leftovers of interrupted writes (harmless; fsck removes them)."""
        return sorted(self.tmp.glob("*.tmp")) if self.local else []
