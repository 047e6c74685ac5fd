"""ISIC 2020: 33,126 dermoscopic training images of 2,056 patients (SIIM-ISIC Melanoma Challenge).

Raw layout (the ISIC challenge's own files, https://challenge2020.isic-archive.com; the
"Data" page links the S3 bucket `isic-challenge-data/2020/`):
    ISIC_2020_Training_JPEG.zip  ->  train/<image_name>.jpg
    ISIC_2020_Training_Dicom.zip ->  train/<image_name>.dcm   (the same pictures as DICOM;
        read where an image has no JPEG: pixels decoded by `medshard.formats.dicom` and
        stored as lossless PNG, no header field kept: meta comes from the CSV either way)
    ISIC_2020_Training_GroundTruth_v2.csv   image_name, patient_id, lesion_id, sex,
        age_approx, anatom_site_general_challenge, diagnosis, benign_malignant, target
        (v1, ISIC_2020_Training_GroundTruth.csv, lacks lesion_id: read when v2 is absent)
    ISIC_2020_Training_Duplicates.csv       image_name_1, image_name_2: pairs of files that
        show the same picture, published by the organisers after the challenge
Facts: file names and URLs from the challenge page as public download scripts and loaders
quote them (code search: `ISIC_2020_Training_GroundTruth_v2.csv`,
`ISIC_2020_Training_Duplicates.csv` with `image_name_1/_2`); CLIMB's
`src/datasets/derm/isic2020.py` reads the JPEG zip and GroundTruth.csv (image_name,
benign_malignant). The DICOM files' encoding (transfer syntax) was not confirmed; any the
DICOM reader decodes works. The test set's labels were never published, so only the
training set is built.

Labels. `classes` is `benign_malignant` verbatim (Table 7's 2 classes). `source_labels`
keeps benign_malignant, diagnosis (the full diagnosis: nevus, melanoma, seborrheic
keratosis, lentigo NOS, lichenoid keratosis, solar lentigo, cafe-au-lait macule, atypical
melanocytic proliferation, unknown) and target (0/1, as text). Meta: sex, age_approx
(years, rounded by ISIC to 5), anatom_site_general_challenge, and has_lesion_id.

Duplicates. Every image named in the `image_name_2` column of the duplicates list is
**excluded** with the counted reason "listed as a duplicate (image_name_2) in
ISIC_2020_Training_Duplicates.csv"; its `image_name_1` twin is kept. Keeping both would
count one picture twice, and the two copies do not always carry the same patient_id, so a
patient split could put one copy in train and the other in test. Excluding the second copy
is what the organisers' list is for and what most published pipelines do (code search).

Split: the challenge's test labels are private, so train/val/test are carved from the
training set by a keyed hash of the **patient_id** (HMAC-SHA256 keyed "medshard-
split:<source>", the build's split fractions, 80/10/10 by default): all images of one
patient share a split (CLIMB splits 80/20 per class by image, no seed).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.formats.dicom import read_image
from medshard.schemas import BadRow, Filtered, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source
from medshard.sources.photo_sets import IMAGE_SUFFIXES, ImageIndex, image_payload

GROUND_TRUTH = ("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_GroundTruth.csv")
DUPLICATES = "ISIC_2020_Training_Duplicates.csv"
CLASSES = ("benign", "malignant")
DUPLICATE_REASON = f"listed as a duplicate (image_name_2) in {DUPLICATES}"
_S3 = "https://isic-challenge-data.s3.amazonaws.com/2020/"


class ISIC2020(Source):
    fixture = "medshard.sources.derm.isic2020_fixture:FIXTURE"
    payload_members = ("image.jpg", "image.png")
    demographic_fields = {"age_years": "age_approx"}  # anatomic site is not the index's site
    info: ClassVar[SourceInfo] = SourceInfo(
        name="isic-2020",
        title="SIIM-ISIC 2020 Challenge: dermoscopic images of patients with melanoma",
        version="2020 training set, ground truth v2",
        modality="dermoscopy",
        tasks=["classification"],
        license=License(name="Creative Commons Attribution-NonCommercial 4.0",
                        spdx="CC-BY-NC-4.0", url="https://challenge2020.isic-archive.com/",
                        terms_version="2020", non_commercial=True),
        access="open",
        homepage="https://challenge2020.isic-archive.com",
        citation="Rotemberg V, Kurtansky N, Betz-Stablein B, et al. A patient-centric dataset of "
        "images and metadata for identifying melanomas using clinical context. Sci Data 8, 34 "
        "(2021). doi:10.34970/2020-ds01",
        label_space=list(CLASSES),
        split_policy="test labels are private: train/val/test carved from the training set by "
        "keyed hash of the patient_id (the build's split fractions, 80/10/10 by default); the "
        "second copy of each published duplicate pair excluded",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter (JPEG release, ground truth v2/v1)"},
        published_counts=PublishedCounts(train=26501, test=6625, unit="images",
                                         reference="CLIMB Table 7 (80/20 of the 33,126 "
                                         "training images by class, duplicates kept); the build's "
                                         "default fractions hold out 10% for test, not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="https",
        files=[
            FileSpec(path="ISIC_2020_Training_JPEG.zip", url=_S3 + "ISIC_2020_Training_JPEG.zip",
                     extract=True),
            FileSpec(path=GROUND_TRUTH[0], url=_S3 + GROUND_TRUTH[0]),
            FileSpec(path=DUPLICATES, url=_S3 + DUPLICATES),
        ],
        approx_bytes=24_000_000_000,
    )

    def ground_truth(self, root: Path) -> str:
        for name in GROUND_TRUTH:
            if (root / name).is_file():
                return name
        raise MissingRawData(f"isic-2020: neither {GROUND_TRUTH[0]} nor {GROUND_TRUTH[1]} is in "
                             f"{root}; run `medshard download isic-2020` or put them there")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.ground_truth(root)

    def label_files(self, root: Path) -> list[str]:
        files = [self.ground_truth(root)]
        return files + ([DUPLICATES] if (root / DUPLICATES).is_file() else [])

    def duplicates(self, root: Path) -> dict[str, str]:
        """image_name_2 -> image_name_1 of the published duplicate pairs ({} without the list).

        One copy of every picture survives: a pair whose second image is already the kept
        copy of its first (listed both ways, or in a cycle) drops nothing."""
        if not (root / DUPLICATES).is_file():
            return {}
        with open(self.path(root, DUPLICATES), newline="", encoding="utf-8") as f:
            pairs = [((row.get("image_name_1") or "").strip(),
                      (row.get("image_name_2") or "").strip()) for row in csv.DictReader(f)]
        dropped: dict[str, str] = {}
        for first, second in pairs:
            if not first or not second or first == second or second in dropped:
                continue
            kept = first
            while kept in dropped:  # follow the chain to the copy that is kept
                kept = dropped[kept]
            if kept != second:
                dropped[second] = first
        return dropped

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        gt = self.ground_truth(root)
        index = ImageIndex(root, suffixes=(*IMAGE_SUFFIXES, ".dcm"))
        dups = self.duplicates(root)
        yield from self.csv_records(root, gt, lambda row: self._record(root, index, dups, row))

    def _record(self, root: Path, index: ImageIndex, dups: dict[str, str],
                row: dict[str, str]) -> RawRecord:
        name, patient = row["image_name"].strip(), row["patient_id"].strip()
        verdict = row["benign_malignant"].strip()
        if verdict not in CLASSES:
            raise ValueError(f"benign_malignant {verdict!r} is not benign or malignant")
        target = row["target"].strip()
        if target != str(CLASSES.index(verdict)):
            raise ValueError(f"target {target!r} contradicts benign_malignant {verdict!r}")
        if not name or not patient:
            raise ValueError("image_name or patient_id is blank")
        age = (row.get("age_approx") or "").strip()
        # the JPEG release first; the DICOM release (same pictures) where no JPEG is there
        rel = index.find(f"{name}.jpg") or index.find(f"{name}.dcm") or f"train/{name}.jpg"
        meta: dict[str, Any] = {
            "sex": (row.get("sex") or "").strip() or None,
            "age_approx": float(age) if age else None,
            "anatom_site_general_challenge":
                (row.get("anatom_site_general_challenge") or "").strip() or None,
            "has_lesion_id": bool((row.get("lesion_id") or "").strip()),
            "duplicate_of": dups.get(name),
        }
        file = root / rel
        return RawRecord(
            record_id=name, subject_id=patient, files=[rel],
            source_labels={"benign_malignant": verdict,
                           "diagnosis": (row.get("diagnosis") or "").strip(), "target": target},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0, meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        if record.meta.get("duplicate_of"):
            raise Filtered(DUPLICATE_REASON)
        meta = {k: v for k, v in record.meta.items() if k != "duplicate_of"}
        rel = record.files[0]
        if rel.lower().endswith(".dcm"):
            # decoded by the DICOM reader (allow-listed tags only; nothing of the header
            # reaches meta, which comes from the CSV for both releases alike)
            image = read_image(self.path(root, rel))
            payload = Payload("image", image.pixels, {**image.descriptor, "view": "dermoscopic"})
        else:
            payload = image_payload(self, root, rel, {"view": "dermoscopic"})
        yield Sample(
            classes=[record.source_labels["benign_malignant"]],
            source_labels=record.source_labels,
            payloads={"image": payload},
            meta=meta,
        )
