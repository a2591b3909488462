"""A plain folder of images: every image becomes an unlabeled item."""

from __future__ import annotations

from pathlib import Path

from visionloop.data.formats.base import SourceItem, SourceScan, image_files, rel, split_of


def read_images(root: Path) -> SourceScan:
    scan = SourceScan("images", root)
    for image in image_files(root):
        name = rel(image, root)
        scan.items.append(
            SourceItem(name, image, name, None, None, split_of(image.relative_to(root).parts[:-1]))
        )
    return scan
