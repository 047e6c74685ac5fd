"""BUSI: 780 breast ultrasound images with lesion masks, normal / benign / malignant.

Raw layout (Dataset_BUSI_with_GT, as the Kaggle copy unpacks):
    Dataset_BUSI_with_GT/{benign,malignant,normal}/<class> (<n>).png
    Dataset_BUSI_with_GT/<class>/<class> (<n>)_mask.png       one per image
    Dataset_BUSI_with_GT/<class>/<class> (<n>)_mask_1.png     a second lesion, _mask_2 ...
Sources: Al-Dhabyani et al., Data in Brief 2020; the Kaggle copy
`aryashah2k/breast-ultrasound-images-dataset` that CLIMB downloads
(`DDVD233/CLIMB:src/datasets/ultrasound/busi.py`).
Images are PNG (most stored as 3 identical channels), about 500 x 600 px; each mask is a
binary PNG (0 / 255) of one lesion, the same size as its image; normal images have an
all-zero mask. The `_mask_<k>` files for images with several lesions follow the naming
that third-party loaders handle (`<name>_mask_1.png`, `<name>_mask_2.png`); CLIMB's
loader drops every file with "mask" in its name and keeps only the class.
The root may be the folder holding `Dataset_BUSI_with_GT/` (or CLIMB's `busi/`) or that
folder itself.

Samples: one per image, the image's PNG bytes as given (`image`), and every mask file of
the image as its own mask role aligned with it: `_mask.png` -> `mask`, `_mask_<k>.png` ->
`mask_<k>` (k = 1..4), each a 0/1 label map (1 = lesion: mask pixels at or above half
scale, 128, in any channel; BUSI's masks are 0/255) that `annotates` the image (the build
checks the sizes agree). A fifth extra mask is a record error, not a silent drop. Masks
keep the dataset's per-lesion files separate: merging them would lose which pixels belong
to which lesion.

Labels: the class folder (`normal`, `benign`, `malignant`), as CLIMB.

Split: BUSI has no official split and publishes no patient ids (780 images from 600
women), so images of one woman may straddle splits: the split is a keyed hash of the image
(split unit "image"). CLIMB takes the first 75% of each class's sorted file names as train.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.folders import files_in, first_existing_dir

CLASSES = ("normal", "benign", "malignant")
RELEASE_DIRS = ("Dataset_BUSI_with_GT", "busi", "")
MAX_EXTRA_MASKS = 4
MASK_ROLES = ("mask", *(f"mask_{k}" for k in range(1, MAX_EXTRA_MASKS + 1)))
_MASK = re.compile(r"^(?P<stem>.+)_mask(?:_(?P<k>\d+))?\.png$", re.IGNORECASE)


def record_id_of(cls: str, stem: str) -> str:
    """`benign (12)` -> `benign_12`: the file stem with runs of other characters as '_'."""
    rid = re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_")
    return rid if rid.lower().startswith(cls) else f"{cls}_{rid}"


def read_mask(data: bytes, name: str) -> np.ndarray:
    """A BUSI mask PNG as a 0/1 uint8 array (any channel above half scale is lesion)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "1") else im.convert("L"))
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable mask {name}: {exc}") from exc
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    return (arr >= 128).astype(np.uint8)


class BUSI(Source):
    fixture = "medshard.sources.ultrasound.busi_fixture:FIXTURE"
    payload_members = ("image.png", *(f"{r}.png" for r in MASK_ROLES))
    info: ClassVar[SourceInfo] = SourceInfo(
        name="busi",
        title="BUSI: Breast Ultrasound Images dataset",
        version="2020 (Dataset_BUSI_with_GT)",
        modality="ultrasound",
        tasks=["classification", "segmentation"],
        license=License(name="CC0 1.0 (as the Kaggle copy states)", spdx="CC0-1.0",
                        url="https://www.kaggle.com/datasets/aryashah2k/breast-ultrasound-images-dataset",
                        terms_version="2020"),
        access="open",
        homepage="https://scholar.cu.edu.eg/?q=afahmy/pages/dataset",
        citation=(
            "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. "
            "Data in Brief. 2020;28:104863."
        ),
        label_space=list(CLASSES),
        split_policy="no official split and no patient ids: keyed hash of the image",
        split_unit="image",
        release_notes={"0.1.0": "first medshard adapter; every lesion mask as its own role"},
        published_counts=PublishedCounts(train=583, test=197, unit="images",
                                          reference="CLIMB Table 7"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://www.kaggle.com/datasets/aryashah2k/breast-ultrasound-images-dataset",
            steps=[
                "Sign in to Kaggle and download the dataset (archive.zip), or the "
                "Dataset_BUSI.zip from the authors' page.",
                "Unpack it so that Dataset_BUSI_with_GT/ sits in the folder named below.",
            ],
            layouts={"release": [FileSpec(path="Dataset_BUSI_with_GT/benign"),
                                 FileSpec(path="Dataset_BUSI_with_GT/malignant"),
                                 FileSpec(path="Dataset_BUSI_with_GT/normal")]},
            archives=[FileSpec(path="archive.zip"), FileSpec(path="Dataset_BUSI.zip")],
        ),
    )

    def release_dir(self, root: Path) -> str:
        for rel in RELEASE_DIRS:
            base = f"{rel}/" if rel else ""
            if first_existing_dir(root, [f"{base}{c}" for c in CLASSES]) is not None:
                return rel
        raise MissingRawData(f"busi: no benign/, malignant/ or normal/ folder in "
                             f"{root}/Dataset_BUSI_with_GT/ or {root}/; unpack the dataset there")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.release_dir(root)

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        release = self.release_dir(root)
        for cls in CLASSES:
            rel_dir = f"{release}/{cls}" if release else cls
            files = list(files_in(root, rel_dir, (".png",)))
            images = {f.name[:-4]: f for f in files if not _MASK.match(f.name)}
            masks: dict[str, list[tuple[int, str, int]]] = {}
            for f in files:
                m = _MASK.match(f.name)
                if m is None:
                    continue
                if m["stem"] not in images:
                    yield BadRow(f.rel, 0, f"mask {f.name!r} has no image {m['stem']}.png beside it")
                    continue
                masks.setdefault(m["stem"], []).append((int(m["k"] or 0), f.rel, f.size))
            for stem, img in images.items():
                rid = record_id_of(cls, stem)
                own = sorted(masks.get(stem, []))
                yield RawRecord(
                    record_id=rid, subject_id=rid, files=[img.rel] + [rel for _, rel, _ in own],
                    source_labels={"class": cls},
                    size_bytes=img.size + sum(s for _, _, s in own),
                    meta={"mask_index": [k for k, _, _ in own]},
                )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0], "file")
        payloads: dict[str, Payload] = {"image": Payload("image", data, {"source_encoding": "png"})}
        for k, rel in zip(record.meta["mask_index"], record.files[1:], strict=True):
            if k > MAX_EXTRA_MASKS:
                raise RecordError(f"{rel}: mask number {k} is above the {MAX_EXTRA_MASKS} extra "
                                  "masks this source declares")
            role = "mask" if k == 0 else f"mask_{k}"
            if role in payloads:
                raise RecordError(f"{rel}: a second file for mask role {role}")
            mask = read_mask(self.read_bytes(root, rel, "file"), Path(rel).name)
            payloads[role] = Payload("mask", mask, {
                "annotates": "image", "label_names": {"0": "background", "1": "lesion"}})
        meta: dict[str, Any] = {"n_masks": len(record.files) - 1,
                                "mask_roles": sorted(r for r in payloads if r != "image")}
        yield Sample(
            classes=[record.source_labels["class"]],
            source_labels=record.source_labels,
            payloads=payloads,
            meta=meta,
            task="classification",
        )
