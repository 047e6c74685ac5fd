"""LC25000: 25,000 lung and colon histopathology images in 5 classes (Borkowski et al. 2019).

Raw layout (LC25000.zip, as the owner's README describes it):
    lung_colon_image_set/colon_image_sets/{colon_aca,colon_n}/*.jpeg
    lung_colon_image_set/lung_image_sets/{lung_aca,lung_n,lung_scc}/*.jpeg
Sources: the `tampapath/lung_colon_image_set` README; the Kaggle mirror
`andrewmvd/lung-and-colon-cancer-histopathological-images` unpacks to the same tree.
5 x 5,000 JPEGs of 768 x 768 px (names like `colonca1.jpeg`, `lungscc12.jpeg`). CLIMB's
loader (`DDVD233/CLIMB:src/datasets/pathology/lc25000.py`) expects the five class folders
directly under one root; that layout is accepted too (the manifest's records say which
path a build read).

Labels: the class folder name, verbatim (`colon_aca`, `colon_n`, `lung_aca`, `lung_n`,
`lung_scc`), one class per image.

Splits and leakage. LC25000 has no official split and no subject identity. Its images are
*augmented* from 1,250 originals (750 lung, 500 colon; the paper: left and right rotations
and horizontal and vertical flips with the Augmentor package), and the dataset publishes no
map from an image to its original. A split by image (the default here, and CLIMB's
stratified random 75/25) therefore puts copies of one original on both sides: test accuracy
on LC25000 is inflated by leakage, and the manifest says so (split unit "image").
What can be done: the `near_duplicate_groups` option reads every image at listing time,
computes a descriptor that does not change under rotation about the centre, flips, the
crop-and-zoom Augmentor applies after a rotation, and brightness/contrast jitter
(`medshard.formats.near_duplicates`: ring means and angular Fourier magnitudes of
log-spaced rings), links images within `near_duplicate_max_distance` of each other
(single linkage, within a class) and splits by group, so the copies it finds stay in one
split; the group id is in each sample's meta. Measured on real H&E tiles, copies lay at
most 0.115 from their original and distinct tiles at least 0.279 apart (the default
threshold is 0.18), but it cannot promise to find every copy of 1,250 unknown originals,
and distinct originals of uniform tissue may be merged (harmless for leakage, costly for
balance). Listing then costs one decode per image (~55 ms for 768 px) and all pairs within
a class (~4 minutes per 5,000-image class on a shared 2-core machine): ~40 minutes for the
full 25,000, once per build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions
from medshard.sources.folders import files_in, first_existing_dir

# class folder -> the sub-folder of lung_colon_image_set/ holding it
CLASS_FOLDERS = {
    "colon_aca": "colon_image_sets", "colon_n": "colon_image_sets",
    "lung_aca": "lung_image_sets", "lung_n": "lung_image_sets", "lung_scc": "lung_image_sets",
}
RELEASE_DIR = "lung_colon_image_set"
SUFFIXES = (".jpeg", ".jpg")


class LC25000Options(SourceOptions):
    near_duplicate_groups: bool = Field(
        False, description="group images by a flip/rotation-invariant perceptual hash and split "
        "by group (reads every image at listing); off: split by image, with the leakage the "
        "dataset's augmentation brings",
    )
    near_duplicate_max_distance: float = Field(
        0.18, ge=0.0, le=1.0, description="largest descriptor distance (1 - correlation) "
        "between two images linked as copies of one original",
    )


class LC25000(Source):
    Options = LC25000Options
    fixture = "medshard.sources.pathology.lc25000_fixture:FIXTURE"
    payload_members = ("image.jpg",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="lc25000",
        title="LC25000: lung and colon histopathological image dataset",
        version="1.0 (2019, LC25000.zip)",
        modality="pathology",
        tasks=["classification"],
        license=License(
            name="none stated (the repository asks users to cite the paper)",
            url="https://github.com/tampapath/lung_colon_image_set",
            terms_version="not stated",
        ),
        access="open",
        homepage="https://github.com/tampapath/lung_colon_image_set",
        citation=(
            "Borkowski AA, Bui MM, Thomas LB, Wilson CP, DeLand LA, Mastorides SM. Lung and Colon "
            "Cancer Histopathological Image Dataset (LC25000). arXiv:1912.12142, 2019."
        ),
        label_space=list(CLASS_FOLDERS),
        split_policy="no official split and no subject ids: keyed hash of the image, or of its "
        "near-duplicate group (option); images augmented from one original may straddle splits "
        "unless grouped",
        split_unit="image",
        release_notes={"0.1.0": "first medshard adapter; near-duplicate grouping option"},
        published_counts=PublishedCounts(
            train=15000, test=3750, unit="images",
            reference="CLIMB Table 7 (15,000 / 3,750 of the 25,000 images; CLIMB's code splits "
            "all images 75/25 stratified, seed 42)",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://github.com/tampapath/lung_colon_image_set",
            steps=[
                "Follow the download link in the repository's README (LC25000.zip, 1.85 GB), or "
                "download the Kaggle mirror 'andrewmvd/lung-and-colon-cancer-histopathological-"
                "images'.",
                "Unpack it so that lung_colon_image_set/ (or the five class folders) sits in the "
                "folder named below.",
            ],
            layouts={
                "release": [FileSpec(path=f"{RELEASE_DIR}/colon_image_sets/colon_aca"),
                            FileSpec(path=f"{RELEASE_DIR}/lung_image_sets/lung_scc")],
                "flat": [FileSpec(path="colon_aca"), FileSpec(path="lung_scc")],
            },
            archives=[FileSpec(path="LC25000.zip")],
        ),
    )

    def class_dirs(self, root: Path) -> dict[str, str]:
        """class -> its folder relative to root (release layout, else CLIMB's flat one)."""
        out: dict[str, str] = {}
        for cls, group in CLASS_FOLDERS.items():
            rel = first_existing_dir(root, (f"{RELEASE_DIR}/{group}/{cls}", cls))
            if rel is not None:
                out[cls] = rel
        return out

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not self.class_dirs(root):
            raise MissingRawData(
                f"lc25000: no class folder (colon_aca, lung_scc, ...) in {root}/{RELEASE_DIR}/"
                f"*_image_sets/ or {root}/; unpack LC25000.zip there")

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        records: list[RawRecord] = []
        for cls, rel_dir in self.class_dirs(root).items():
            for f in files_in(root, rel_dir, SUFFIXES):
                stem = f.name.rsplit(".", 1)[0]
                rid = f"{cls}_{stem}"
                if not _safe_id(rid):
                    yield BadRow(f.rel, 0, f"file name {f.name!r} is not an LC25000 image name "
                                 "(letters, digits, '_' or '-' before the extension)")
                    continue
                records.append(RawRecord(
                    record_id=rid, subject_id=rid, files=[f.rel],
                    source_labels={"class": cls}, size_bytes=f.size,
                    meta={"organ": cls.split("_")[0], "near_duplicate_group": None},
                ))
        if self._options["near_duplicate_groups"]:
            records = self._grouped(records, root)
        yield from records

    def _grouped(self, records: list[RawRecord], root: Path) -> list[RawRecord]:
        """Records with subject = their near-duplicate group (within a class); an image
        that cannot be decoded keeps itself as its group (load quarantines it)."""
        from medshard.formats.near_duplicates import group_near_duplicates, ring_descriptor

        out: list[RawRecord] = []
        by_class: dict[str, list[RawRecord]] = {}
        for r in records:
            by_class.setdefault(r.source_labels["class"], []).append(r)
        for members in by_class.values():
            descriptors = []
            readable: list[RawRecord] = []
            for r in members:
                try:
                    descriptors.append(ring_descriptor(_decode(self.path(root, r.files[0]))))
                    readable.append(r)
                except RecordError:
                    out.append(r)
            roots = group_near_duplicates(
                descriptors, float(self._options["near_duplicate_max_distance"]))
            for r, g in zip(readable, roots, strict=True):
                group = readable[g].record_id
                out.append(r.model_copy(update={
                    "subject_id": group, "meta": {**r.meta, "near_duplicate_group": group}}))
        return sorted(out, key=lambda r: r.record_id)

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0])
        meta: dict[str, Any] = dict(record.meta)
        yield Sample(
            classes=[record.source_labels["class"]],
            source_labels=record.source_labels,
            payloads={"image": Payload("image", data, {"source_encoding": "jpeg"})},
            meta=meta,
            task="classification",
        )


def _safe_id(rid: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z0-9_-]+", rid) is not None


def _decode(path: Path):
    """RGB array of an image file; RecordError when it cannot be decoded."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise RecordError(f"missing image file {path.name}") from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise RecordError(f"unreadable image {path.name}: {exc}") from exc
