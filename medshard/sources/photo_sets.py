"""What the photograph sources (dermatology, fundus) share: a file-name index and the image
payload.

These datasets ship a label CSV that names each image by file name, while the images sit
in one or several folders whose names vary between the owner's release and the mirrors
(HAM10000's two part folders, PAD-UFES-20's `imgs_part_N`, Messidor-2's `.jpg` names for
`.JPG` files). `ImageIndex` maps a file name (case-insensitive, with or without its
extension) to its path, from one directory walk: listing stays cheap and reads no payload.
"""

from __future__ import annotations

import os
from pathlib import Path

from medshard.schemas import Payload, RecordError
from medshard.sources.base import Source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}


def _files_under(root, base) -> list[str]:
    """Every file under `base`, relative to `root`, in a fixed order: a local walk (which
    does not follow directory links), or a listing of a root on object storage
    (`medshard.formats.remote.RemotePath`)."""
    if not isinstance(base, Path):
        return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        found += [Path(dirpath, name).relative_to(root).as_posix() for name in sorted(filenames)]
    return found


class ImageIndex:
    """File name -> path relative to the root, for every image file under `root/under`."""

    def __init__(self, root: Path, under: str = "",
                 suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> None:
        self.by_name: dict[str, str] = {}
        self.ambiguous: set[str] = set()
        base = root / under if under else root
        for rel in _files_under(root, base):
            name = rel.rsplit("/", 1)[-1]
            if not name.lower().endswith(suffixes) or name.startswith("._"):
                continue
            for key in {name.lower(), Path(name).stem.lower()}:
                if key in self.by_name:
                    self.ambiguous.add(key)
                else:
                    self.by_name[key] = rel

    def find(self, name: str) -> str | None:
        """The path of the image called `name` (with or without its extension, any case):
        the exact name first, then the bare stem; None when no file has that name, or several
        do (the same name in two folders, a stem shared by `x.jpg` and `x.dcm`)."""
        for key in (name.lower(), Path(name).stem.lower()):
            if key in self.by_name and key not in self.ambiguous:
                return self.by_name[key]
        return None


def image_payload(source: Source, root: Path, rel: str, descriptor: dict) -> Payload:
    """The image at `rel` as a payload: JPEG/PNG bytes kept as shipped (the encoder decodes
    them fully, so a truncated file is quarantined); any other format (TIFF) is decoded and
    stored losslessly as PNG at its native size and depth."""
    data = source.read_bytes(root, rel)
    if not data:
        raise RecordError(f"empty image file {rel}")
    encoding = next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)
    if encoding is not None:
        return Payload("image", data, {**descriptor, "source_encoding": encoding})
    import io

    import numpy as np
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "unknown").lower()
            im.load()
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB", "I;16") else im)
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable image {rel}: {exc}") from exc
    return Payload("image", arr, {
        **descriptor, "source_encoding": fmt, "bit_depth": 16 if arr.dtype == np.uint16 else 8,
        "photometric": "RGB" if arr.ndim == 3 else "MONOCHROME2",
    })


