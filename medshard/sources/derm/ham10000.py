"""HAM10000: 10,015 dermatoscopic images of 7,470 pigmented lesions (ViDIR Group, Vienna).

Raw layout (the owner's Harvard Dataverse release, doi:10.7910/DVN/DBW86T, as unpacked; the
Kaggle mirror `kmader/skin-cancer-mnist-ham10000` ships the same names plus `hmnist_*.csv`
files, which are not read):
    HAM10000_metadata.csv        lesion_id, image_id, dx, dx_type, age, sex, localization
                                 (newer copies add a trailing `dataset` column: kept in meta)
    HAM10000_images_part_1/<image_id>.jpg     600 x 450 JPEG (Dataverse: HAM10000_images_part1.zip,
    HAM10000_images_part_2/<image_id>.jpg     5,000 files, and part2.zip, 5,015 files)
Facts: the zips, their counts, the dx and dx_type codes and "lesions with multiple images, which
can be tracked by the lesion_id-column" from the Dataverse description; the licence, CC BY-NC
4.0, as the ISIC archive lists HAM10000 (the Kaggle mirror states CC BY-NC-SA 4.0: medshard
declares the owner's); the column list and the part folders from the Kaggle page
(../shared/SOURCES.md, re-checked against public loaders through the code search); the dx codes
`akiec, bcc, bkl, df, mel, nv, vasc` from Tschandl et al., Sci Data 5:180161 (2018) and CLIMB's
`src/datasets/derm/HAM10000.py`. Dataverse lists the metadata as a tabular file: download it
in its original format (CSV). An image is found by its file name in any folder under the
root, so both part folders, a merged `HAM10000_images/` or the Kaggle double folders work.

Labels. `classes` is the dx code verbatim (the vocabulary maps it: mel, nv, bcc, akiec kept as
CLIMB's MEL/NV/BCC/AKIEC; CLIMB's OTHER is bkl + df + vasc, kept apart as three concepts).
`source_labels` keeps dx and dx_type (histo, follow_up, consensus, confocal: how the diagnosis
was confirmed). Meta: age (years, null when blank), sex, localization (anatomic site), and
dataset (the collection: vidir_molemax, vidir_modern, rosendahl, ...; the index's `site`).

Split: HAM10000 has no official split and no patient identity; several images show one
lesion (same lesion_id). The split unit is the **lesion**: train/val/test by a keyed hash of
the lesion_id (HMAC-SHA256 keyed "medshard-split:<source>", the build's split fractions,
80/10/10 by default), never of the image, so two images of one lesion always share a split
(CLIMB splits images at random, 80/20 per class, which lets a lesion's images straddle train
and test). Two lesions of one patient can still straddle splits: the data cannot tell
(`info.split_unit` says so). CLIMB reads the ISIC 2018 Task 3 copy instead (one-hot CSV,
same 10,015 images); this adapter reads the owner's release, whose lesion_id is what makes a
leak-free split possible.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.schemas import BadRow, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.photo_sets import (
        ImageIndex,
        image_payload,
)

DX_CODES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
METADATA = "HAM10000_metadata.csv"
DATAVERSE = "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/DBW86T"


def _age(text: str) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


class HAM10000(Source):
    fixture = "medshard.sources.derm.ham10000_fixture:FIXTURE"
    payload_members = ("image.jpg", "image.png")
    demographic_fields = {"site": "dataset"}  # the collection an image came from (Vienna, ...)
    required_files = (METADATA,)
    root_hint = "put the metadata CSV and the image part folders there (`medshard info ham10000`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="ham10000",
        title="HAM10000: a large collection of multi-source dermatoscopic images of common "
        "pigmented skin lesions",
        version="Dataverse V4 (doi:10.7910/DVN/DBW86T)",
        modality="dermoscopy",
        tasks=["classification"],
        license=License(name="Creative Commons Attribution-NonCommercial 4.0", spdx="CC-BY-NC-4.0",
                        url=DATAVERSE, terms_version="V4", non_commercial=True),
        access="open",
        homepage=DATAVERSE,
        citation="Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of "
        "multi-source dermatoscopic images of common pigmented skin lesions. Sci Data 5, 180161 "
        "(2018).",
        label_space=list(DX_CODES),
        split_policy="no official split: train/val/test by keyed hash of the lesion_id (the "
        "build's split fractions, 80/10/10 by default), so the images of one lesion never "
        "straddle splits",
        split_unit="lesion (the release carries no patient identity: two lesions of one patient "
        "can land in different splits)",
        release_notes={"0.1.0": "first medshard adapter (Dataverse release, Kaggle mirror)"},
        published_counts=PublishedCounts(
            train=8012, test=2003, unit="images",
            reference="CLIMB Table 7 (random 80/20 of images); the build's default "
            "fractions hold out 10% for test, not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url=DATAVERSE,
            steps=[
                "Open the Dataverse page above and accept its terms (CC BY-NC 4.0).",
                "Download HAM10000_images_part1.zip (5,000 JPEGs), HAM10000_images_part2.zip "
                "(5,015 JPEGs) and HAM10000_metadata (choose 'Original File Format', a CSV; "
                "save it as HAM10000_metadata.csv).",
                "Unpack the zips into the folder named below, beside the CSV (any folder "
                "names: images are found by file name). "
                "The Kaggle copy (kmader/skin-cancer-mnist-ham10000), unpacked, works too.",
            ],
            layouts={"dataverse": [FileSpec(path=METADATA)]},
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        index = ImageIndex(root)
        yield from self.csv_records(root, METADATA, lambda row: self._record(root, index, row))

    def _record(self, root: Path, index: ImageIndex, row: dict[str, str]) -> RawRecord:
        image_id, lesion = row["image_id"].strip(), row["lesion_id"].strip()
        dx = row["dx"].strip()
        if dx not in DX_CODES:
            raise ValueError(f"dx {dx!r} is not one of {', '.join(DX_CODES)}")
        if not image_id or not lesion:
            raise ValueError("image_id or lesion_id is blank")
        rel = index.find(f"{image_id}.jpg") or f"HAM10000_images_part_1/{image_id}.jpg"
        meta: dict[str, Any] = {
            "age": _age(row.get("age", "")),
            "sex": (row.get("sex") or "").strip() or None,
            "localization": (row.get("localization") or "").strip() or None,
            "dataset": (row.get("dataset") or "").strip() or None,
        }
        file = root / rel
        return RawRecord(
            record_id=image_id, subject_id=lesion, files=[rel],
            source_labels={"dx": dx, "dx_type": (row.get("dx_type") or "").strip()},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0, meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        yield Sample(
            classes=[record.source_labels["dx"]],
            source_labels=record.source_labels,
            payloads={"image": image_payload(self, root, record.files[0], {"view": "dermoscopic"})},
            meta=dict(record.meta),
        )
