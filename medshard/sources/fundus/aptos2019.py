"""APTOS 2019 Blindness Detection: 3,662 labelled retinal photographs (Aravind Eye Hospital).

Raw layout (the Kaggle competition `aptos2019-blindness-detection`, its Data page):
    train.csv                 id_code, diagnosis (0-4)
    train_images/<id_code>.png
    test.csv, test_images/    1,928 images without labels (never published): not read
    sample_submission.csv     not read
Facts: the Data page and CLIMB's `src/datasets/fundus/aptos.py` (reads train.csv and
train_images/<id_code>.png, splits 80/20 per class with seed 0).

Labels. The competition grades each image on the International Clinical Diabetic
Retinopathy (ICDR) scale, 0 = No DR, 1 = Mild, 2 = Moderate, 3 = Severe, 4 = Proliferative
DR (Data page). `classes` is the grade's name; `source_labels` keeps `diagnosis` as written
(text), the integer `grade` (ordered: a higher grade is worse) and `grading_scale`
"ICDR 0-4", so a user can train an ordinal or regression head.

Split: the test labels are not public (the competition's private leaderboard), so only
train.csv is built and train/val/test are carved from it by a keyed hash (HMAC-SHA256 keyed
"medshard-split:<source>", the build's split fractions, 80/10/10 by default). APTOS
publishes **no patient or eye identity**: the unit is the image, and two images of one
patient (both eyes, repeat visits) can straddle splits; `info.split_unit` and the manifest
say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from medshard.schemas import BadRow, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.photo_sets import image_payload

RULES = "https://www.kaggle.com/competitions/aptos2019-blindness-detection/rules"
GRADES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative DR")
SCALE = "ICDR 0-4"
_ID = re.compile(r"^[0-9a-f]+$")


class APTOS2019(Source):
    fixture = "medshard.sources.fundus.aptos2019_fixture:FIXTURE"
    payload_members = ("image.png", "image.jpg")
    required_files = ("train.csv",)
    root_hint = ("run `medshard download aptos-2019` (accept the competition rules on Kaggle "
                 "first) or put train.csv and train_images/ there")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="aptos-2019",
        title="APTOS 2019 Blindness Detection (diabetic retinopathy grades of fundus photographs)",
        version="2019 competition (train set)",
        modality="fundus",
        tasks=["ordinal classification"],
        license=License(name="Kaggle competition rules (APTOS 2019 Blindness Detection)",
                        url=RULES, terms_version="2019", non_commercial=True),
        access="registration",
        homepage="https://www.kaggle.com/competitions/aptos2019-blindness-detection",
        citation="Karthik, Maggie, Dane S. APTOS 2019 Blindness Detection. Kaggle (2019). "
        "https://kaggle.com/competitions/aptos2019-blindness-detection",
        label_space=list(GRADES),
        split_policy="test labels are not public: train/val/test carved from train.csv by keyed "
        "hash of the image (the build's split fractions, 80/10/10 by default)",
        split_unit="image (no patient or eye identity is published: images of one patient can "
        "land in different splits)",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(
            train=2929, test=733, unit="images",
            reference="CLIMB Table 7 (80/20 of train.csv by class); the "
            "build's default fractions hold out 10% for test, "
            "not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", competition="aptos2019-blindness-detection",
        include=["train.csv", "train_images/*"], approx_bytes=9_000_000_000,
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        yield from self.csv_records(root, "train.csv", lambda row: self._record(root, row))

    def _record(self, root: Path, row: dict[str, str]) -> RawRecord:
        id_code, cell = row["id_code"].strip(), row["diagnosis"].strip()
        if not _ID.match(id_code):
            raise ValueError(f"id_code {id_code!r} is not a hexadecimal image id")
        if cell not in {str(g) for g in range(len(GRADES))}:
            raise ValueError(f"diagnosis {cell!r} is not an ICDR grade 0-4")
        rel = f"train_images/{id_code}.png"
        file = root / rel
        return RawRecord(
            record_id=id_code, subject_id=id_code, files=[rel],
            source_labels={"diagnosis": cell, "grade": int(cell), "grading_scale": SCALE},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        yield Sample(
            classes=[GRADES[record.source_labels["grade"]]],
            source_labels=record.source_labels,
            payloads={"image": image_payload(self, root, record.files[0], {"view": "fundus"})},
            task="ordinal classification",
        )
