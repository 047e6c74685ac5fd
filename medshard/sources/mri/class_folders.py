"""Image sets laid out as `<split folder>/<class folder>/<image>`: the Kaggle brain MRI sets.

The class is the folder an image sits in; the split, where the set has one, is the folder
above it. Nothing else labels an image, so listing is a directory walk (no payload is
read) and loading keeps the file's own JPEG/PNG bytes (the image encoder decodes each one
fully, so a truncated or non-image file is quarantined at `transform`).

None of these sets carries a patient identity: the split unit is the image, and the
manifest says so (`split_unit`). Several slices of one patient can therefore sit in two
splits; that is a property of the data, not something a keyed hash can fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import Payload, RawRecord, Sample
from medshard.sources.base import MissingRawData, Source

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def image_record_id(prefix: str, name: str) -> str:
    """`<prefix>_<file stem>`, with characters outside [A-Za-z0-9_-] replaced by `_`.

    `.jpg` is dropped; any other extension stays in the id (`Y1.JPG` -> `Y1_JPG`), so `Y1.jpg`
    and `Y1.JPG` differ. When a name had to be changed (`gg (1).jpg`), 8 hex digits of the
    name's sha256 follow, so two names that change to the same text stay distinct.
    """
    base = name[: -len(".jpg")] if name.endswith(".jpg") else name
    safe = _UNSAFE.sub("_", base)
    if safe != base:
        safe += "-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{prefix}_{safe}"


class ClassFolderImages(Source):
    """A source whose images sit in `<split folder>/<class folder>/` under its layout folder.

    Subclasses declare `split_folders` (folder -> official split, or None where the set
    has no split: the build then assigns one by keyed hash of the image), `class_folders`
    (the label space, as the folders are named) and `layout_folders` (where the split
    folders may sit: "" is the root itself, then wrapper folders the archive may add).
    """

    split_folders: ClassVar[dict[str, str | None]]
    class_folders: ClassVar[tuple[str, ...]]
    layout_folders: ClassVar[tuple[str, ...]] = ("",)
    payload_members = ("image.jpg", "image.png")
    task: ClassVar[str] = "multi-class classification"

    def layout_dir(self, root: Path) -> Path:
        """The first layout folder holding any of the class folders where they belong."""
        for folder in self.layout_folders:
            base = root / folder if folder else root
            if any((base / s / c).is_dir() for s in self.split_folders
                   for c in self.class_folders):
                return base
        want = ", ".join(f"{s}/{c}/" if s else f"{c}/" for s in self.split_folders
                         for c in self.class_folders[:2])
        raise MissingRawData(f"{self.info.name}: no class folders ({want}...) in {root}")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.layout_dir(root)

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        base = self.layout_dir(root)
        for split_folder, official in self.split_folders.items():
            for cls in self.class_folders:
                folder = base / split_folder / cls if split_folder else base / cls
                if not folder.is_dir():
                    continue
                prefix = "_".join(p for p in (split_folder, cls) if p)
                for path in sorted(folder.rglob("*"), key=lambda p: p.as_posix()):
                    # a symlink is listed too: opening it (Source.path) refuses or follows it
                    if not (path.is_symlink() or path.is_file()):
                        continue
                    sub = path.relative_to(folder).parent
                    sub_prefix = "_".join([prefix, *(_UNSAFE.sub("_", p) for p in sub.parts)])
                    record_id = image_record_id(sub_prefix, path.name)
                    yield RawRecord(
                        record_id=record_id,
                        # no patient identity in the data: the image is its own subject
                        subject_id=record_id,
                        files=[path.relative_to(root).as_posix()],
                        source_labels={"class_folder": cls},
                        split=self.official_split(official, record_id),  # type: ignore[arg-type]
                        size_bytes=path.lstat().st_size,
                        meta=self.record_meta(split_folder, cls),
                    )

    def official_split(self, official: str | None, subject: str) -> str | None:
        """The folder's split; val carved from train where the source has the option."""
        if official == "train" and "val_fraction" in self._options:
            return self.carve_val("train", subject)
        return official

    def record_meta(self, split_folder: str, cls: str) -> dict[str, Any]:
        return {"split_folder": split_folder or None}

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0])
        cls = record.source_labels["class_folder"]
        yield Sample(
            classes=[cls],
            source_labels=dict(record.source_labels),
            payloads={"image": Payload("image", data, {"view": None})},
            meta=dict(record.meta),
            task=self.task,
        )
