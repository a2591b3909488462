"""Shared shapes of format readers and writers."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from visionloop.data.validate import Box, Finding, RawBox

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".mpo"})
NOT_IMAGES = frozenset(
    {
        ".txt",
        ".xml",
        ".json",
        ".yaml",
        ".yml",
        ".md",
        ".csv",
        ".names",
        ".cache",
        ".py",
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".html",
        ".pdf",
        ".toml",
        ".ini",
        ".log",
    }
)
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass
class SourceItem:
    """One image of a source dataset with what its annotations say about it."""

    name: str  # path relative to the dataset root (posix), the item's name
    image_path: Path
    annotation: str  # the file that is the source of truth for messages
    boxes: list[RawBox] | None  # None = unlabeled
    declared_size: tuple[int, int] | None = None
    split: str | None = None


@dataclass
class SourceScan:
    format: str
    root: Path
    items: list[SourceItem] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # as the source declares them, in order
    findings: list[Finding] = field(default_factory=list)

    @property
    def has_splits(self) -> bool:
        return any(i.split for i in self.items)


@dataclass(frozen=True)
class ExportSample:
    """One item of a dataset version, ready to be written by a format writer."""

    name: str
    data: bytes
    width: int
    height: int
    boxes: list[Box]
    split: str


_LAYOUT_DIRS = frozenset({"images", "jpegimages", "labels", "train", "val", "valid", "test"})


def export_name(name: str) -> str:
    """An item name without the source layout's leading folders (``images/train/a.jpg`` → ``a.jpg``),
    so each writer can lay files out its own way."""
    parts = PurePosixPath(name).parts
    i = 0
    while i < len(parts) - 1 and parts[i].lower() in _LAYOUT_DIRS:
        i += 1
    return "/".join(parts[i:])


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def split_of(parts: tuple[str, ...] | str) -> str | None:
    """The split named by a path component or file stem (``train``, ``valid``, …)."""
    names = [parts] if isinstance(parts, str) else list(parts)
    for name in names:
        low = name.lower()
        if low in _SPLIT_ALIASES:
            return _SPLIT_ALIASES[low]
        for token in low.replace("-", "_").replace(".", "_").split("_"):
            if token in _SPLIT_ALIASES:
                return _SPLIT_ALIASES[token]
    return None


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` in sorted order, skipping hidden files, macOS junk and
    symbolic links (a dataset never reaches outside its folder)."""
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        base = Path(dirpath)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = base / name
            if not path.is_symlink():
                yield path


_MAGIC = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _looks_like_image(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(16)
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def image_files(root: Path) -> list[Path]:
    """Candidate images: image suffixes, plus unknown suffixes whose first bytes look like an image.

    Candidates are then *decoded* to decide whether they are usable images.
    """
    out = []
    for p in walk_files(root):
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES or (suffix not in NOT_IMAGES and _looks_like_image(p)):
            out.append(p)
    return out


@functools.lru_cache(maxsize=64)
def _real(root: str) -> str:
    return os.path.realpath(root)


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (links resolved) lies within ``root``."""
    real_root = _real(str(root))
    return os.path.realpath(path).startswith(real_root.rstrip(os.sep) + os.sep)


def key(path: Path) -> str:
    """A cheap identity for a path built from the same root (no filesystem calls)."""
    return os.path.normpath(os.path.abspath(path))  # noqa: PTH100 (resolve() would touch the disk)


def safe_join(root: Path, name: str) -> Path | None:
    """``root/name`` if ``name`` is a relative path that stays inside ``root``, else ``None``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        return None
    return root.joinpath(*pure.parts)  # lexically inside; callers check `inside()` on what they open
