"""Messidor-2: 1,748 macula-centred fundus photographs of 874 diabetic examinations (both eyes).

Raw layout (two owners, both needed):
    IMAGES/<name>.png | <name>.JPG   the images, from ADCIS (registration,
                                     https://www.adcis.net/en/third-party/messidor2/)
    messidor-2.csv                   ADCIS's examination list: one row per examination, the
                                     left- and right-eye image names separated by ';'
    messidor_data.csv                adjudicated grades, from Kaggle
                                     `google-brain/messidor2-dr-grades`
                                     (Krause et al. 2018): image_id, adjudicated_dr_grade,
                                     adjudicated_dme, adjudicated_gradable
    messidor_readme.txt              Kaggle's description of the grades (not read)
Facts: CLIMB's `src/datasets/fundus/messidor2.py` (reads messidor_data.csv columns 0-1, drops
rows without a grade, maps `.jpg` names to the `.JPG` files, looks in IMAGES/); the
semicolon-separated pairing of messidor-2.csv from public loaders (code search:
"messidor-2.csv with semicolon-delimited left;right image pairs"); its exact header is
unconfirmed, so every row is read as a list of cells and each cell naming an image counts,
whatever the header says. File names are matched case-insensitively.

Labels. The Kaggle grades are ICDR 0-4 adjudicated by three retina specialists: 0 = None,
1 = Mild DR, 2 = Moderate DR, 3 = Severe DR, 4 = PDR. `classes` is the grade's name (the
vocabulary shares the five concepts with APTOS 2019); `source_labels` keeps the grade cell as
written, the integer `grade` (ordered), `grading_scale` "ICDR 0-4", and adjudicated_dme (0/1
as text). Four images are ungradable (adjudicated_gradable 0, no grade): they are excluded
with the counted reason "ungradable: no adjudicated DR grade" (CLIMB drops them too).

Split: Messidor-2 has no official split. Each examination is one patient's two eyes, so the
split unit is the **examination** from messidor-2.csv: train/val/test by a keyed hash of it
(HMAC-SHA256 keyed "medshard-split:<source>", the build's split fractions, 80/10/10 by
default), never of the image (CLIMB splits images 80/20 per grade, which separates the eyes
of one patient). An image in no examination row is its own unit (`meta["paired"]` false).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from medshard.schemas import BadRow, Filtered, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.photo_sets import (
    IMAGE_SUFFIXES,
        ImageIndex,
        image_payload,
)

GRADES = ("None", "Mild DR", "Moderate DR", "Severe DR", "PDR")
SCALE = "ICDR 0-4"
GRADES_CSV = "messidor_data.csv"
EXAMS_CSV = "messidor-2.csv"
UNGRADABLE = "ungradable: no adjudicated DR grade"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def _grade(text: str) -> int | None:
    """The adjudicated grade cell ("2", "2.0"; blank for ungradable) as an integer."""
    text = text.strip()
    if not text:
        return None
    value = float(text)
    if value not in (0, 1, 2, 3, 4):
        raise ValueError(f"adjudicated_dr_grade {text!r} is not an ICDR grade 0-4")
    return int(value)


class Messidor2(Source):
    fixture = "medshard.sources.fundus.messidor2_fixture:FIXTURE"
    payload_members = ("image.png", "image.jpg")
    required_files = (GRADES_CSV, EXAMS_CSV)
    root_hint = ("the grades CSV comes from Kaggle google-brain/messidor2-dr-grades, the "
                 "exams CSV from the ADCIS download (`medshard info messidor-2`)")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="messidor-2",
        title="Messidor-2 with the adjudicated DR grades of Krause et al.",
        version="ADCIS Messidor-2 images; Kaggle grades v1",
        modality="fundus",
        tasks=["ordinal classification"],
        license=License(name="Messidor-2 terms of use (ADCIS / LaTIM); grades CC0 1.0",
                        url="https://www.adcis.net/en/third-party/messidor2/",
                        terms_version="2014", non_commercial=True),
        access="registration",
        homepage="https://www.adcis.net/en/third-party/messidor2/",
        citation="Decencière E, Zhang X, Cazuguel G, et al. Feedback on a publicly distributed "
        "image database: the Messidor database. Image Anal Stereol 33(3):231-234 (2014). Grades: "
        "Krause J, Gulshan V, Rahimy E, et al. Grader variability and the importance of "
        "reference standards for evaluating machine learning models for diabetic retinopathy. "
        "Ophthalmology 125(8):1264-1272 (2018).",
        label_space=list(GRADES),
        split_policy="no official split: train/val/test by keyed hash of the examination (both "
        "eyes of a patient) from messidor-2.csv (the build's split fractions, 80/10/10 by "
        "default); ungradable images excluded",
        split_unit="examination (one patient's two eyes)",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(train=1394, test=350, unit="images",
                                         reference="CLIMB Table 7 (80/20 of the 1,744 graded "
                                         "images by grade); the build's default fractions hold "
                                         "out 10% for test, not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://www.adcis.net/en/third-party/messidor2/",
            steps=[
                "Register at the ADCIS page above, accept the Messidor-2 terms and download the "
                "image archive; unpack it so that IMAGES/ and messidor-2.csv sit in the folder "
                "named below.",
                "Download messidor_data.csv (and messidor_readme.txt) from "
                "https://www.kaggle.com/datasets/google-brain/messidor2-dr-grades into the same "
                "folder.",
            ],
            layouts={"adcis+kaggle": [FileSpec(path=GRADES_CSV), FileSpec(path=EXAMS_CSV)]},
        ),
    )

    def examinations(self, root: Path) -> dict[str, str]:
        """Image name (lower case) -> its examination's unit: the exam's first image name."""
        exams: dict[str, str] = {}
        with open(self.path(root, EXAMS_CSV), encoding="utf-8", errors="replace") as f:
            for line in f:
                names = [c.strip().strip('"') for c in re.split(r"[;,\t]", line)]
                names = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
                for name in names:
                    exams.setdefault(name.lower(), f"exam:{names[0].lower()}")
        return exams

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        index = ImageIndex(root)
        exams = self.examinations(root)
        yield from self.csv_records(root, GRADES_CSV,
                                    lambda row: self._record(root, index, exams, row))

    def _record(self, root: Path, index: ImageIndex, exams: dict[str, str],
                row: dict[str, str]) -> RawRecord:
        image_id = row["image_id"].strip()
        if not image_id.lower().endswith(IMAGE_SUFFIXES) or "/" in image_id or "\\" in image_id:
            raise ValueError(f"image_id {image_id!r} is not an image file name")
        grade = _grade(row["adjudicated_dr_grade"])
        unit = exams.get(image_id.lower(), f"image:{image_id.lower()}")
        rel = index.find(image_id) or f"IMAGES/{image_id}"
        file = root / rel
        return RawRecord(
            record_id=_SAFE.sub("_", Path(image_id).stem),
            subject_id=unit, files=[rel],
            source_labels={"adjudicated_dr_grade": row["adjudicated_dr_grade"].strip(),
                           "grade": grade, "grading_scale": SCALE,
                           "adjudicated_dme": (row.get("adjudicated_dme") or "").strip()},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0,
            meta={"paired": unit.startswith("exam:"),
                  "adjudicated_gradable": (row.get("adjudicated_gradable") or "").strip() or None},
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        grade = record.source_labels["grade"]
        if grade is None:
            raise Filtered(UNGRADABLE)
        yield Sample(
            classes=[GRADES[grade]],
            source_labels=record.source_labels,
            payloads={"image": image_payload(self, root, record.files[0], {"view": "fundus"})},
            meta=dict(record.meta),
            task="ordinal classification",
        )
