"""Jichi: 9,939 fundus photographs of 2,740 patients graded on the modified Davis scale
(Jichi Medical University, Japan).

Raw layout (the figshare item "Davis Grading of One and Concatenated Figures",
https://figshare.com/articles/figure/Davis_Grading_of_One_and_Concatenated_Figures/4879853,
published with Takahashi et al. 2017, PLoS ONE; unpacked):
    list.csv        Image, Davis_grading_of_concatenated_figures, Davis_grading_of_one_figure
                    grades written ndr / sdr / ppdr / pdr
    <Image>         JPEG photographs (AFC-230 Nidek camera), named
                    <patient>_<image number>_<L|R>.jpg, in one folder beside list.csv
Facts: CLIMB's `src/datasets/fundus/jinchi.py` (reads list.csv columns 0 and 2, `Image` and
`Davis_grading_of_one_figure`, maps ndr/sdr/ppdr/pdr to 0-3, splits 80/20 per grade with seed
0, images beside list.csv in the `dmr` folder); the column order, file-name pattern and the
image count (9,939 rows) from a public description of the release (code search
"Davis_grading_of_concatenated_figures"). The folder name holding the images varies between
copies, so an image is found by its file name anywhere under the root.

Labels. The modified Davis scale orders four grades: ndr (no DR) < sdr (simple DR) <
ppdr (pre-proliferative DR) < pdr (proliferative DR). `classes` is the grade of
`Davis_grading_of_one_figure` (the one-image grade, as CLIMB; the vocabulary keeps sdr/ppdr
apart from the ICDR concepts because they straddle ICDR grades). `source_labels` keeps both
grades as written, the integer `grade` 0-3 of the one-figure grade (ordered) and
`grading_scale` "modified Davis". Meta: laterality (L/R) from the name.

Split: no official split. The file name carries the patient number, so train/val/test are
assigned by a keyed hash of the **patient** (HMAC-SHA256 keyed "medshard-split:<source>",
the build's split fractions, 80/10/10 by default): every image of a patient, both eyes and
all visits, shares a split (CLIMB splits images 80/20 per grade). A name that does not
follow the pattern is its own unit (`meta["patient_in_name"]` false).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from medshard.schemas import BadRow, License, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import Source
from medshard.sources.photo_sets import ImageIndex, image_payload

DAVIS = ("ndr", "sdr", "ppdr", "pdr")
SCALE = "modified Davis"
LIST_CSV = "list.csv"
_NAME = re.compile(r"^(\d+)_(\d+)_([LR])\.jpe?g$", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def _davis(text: str, column: str) -> str:
    value = text.strip().lower()
    if value not in DAVIS:
        raise ValueError(f"{column} {text!r} is not one of {', '.join(DAVIS)}")
    return value


class Jichi(Source):
    fixture = "medshard.sources.fundus.jichi_fixture:FIXTURE"
    payload_members = ("image.jpg", "image.png")
    required_files = (LIST_CSV,)
    root_hint = "unpack the figshare item there (`medshard info jichi`)"
    info: ClassVar[SourceInfo] = SourceInfo(
        name="jichi",
        title="Jichi Medical University fundus photographs with modified Davis DR grades",
        version="figshare 4879853 v1",
        modality="fundus",
        tasks=["ordinal classification"],
        license=License(name="Creative Commons Attribution 4.0", spdx="CC-BY-4.0",
                        url="https://figshare.com/articles/figure/"
                        "Davis_Grading_of_One_and_Concatenated_Figures/4879853",
                        terms_version="v1"),
        access="open",
        homepage="https://pmc.ncbi.nlm.nih.gov/articles/PMC5480986/",
        citation="Takahashi H, Tampo H, Arai Y, Inoue Y, Kawashima H. Applying artificial "
        "intelligence to disease staging: Deep learning for improved staging of diabetic "
        "retinopathy. PLoS ONE 12(6): e0179790 (2017).",
        label_space=list(DAVIS),
        split_policy="no official split: train/val/test by keyed hash of the patient number in "
        "the file name (the build's split fractions, 80/10/10 by default)",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(
            train=7950, test=1989, unit="images",
            reference="CLIMB Table 7 (80/20 of images by grade); the build's "
            "default fractions hold out 10% for test, not 20%"),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://figshare.com/articles/figure/Davis_Grading_of_One_and_Concatenated_"
            "Figures/4879853",
            steps=[
                "Download the figshare item above ('Download all', CC BY 4.0).",
                "Unpack it so that the folder named below holds list.csv and the JPEG "
                "photographs (any sub-folder; CLIMB calls it dmr/).",
            ],
            layouts={"figshare": [FileSpec(path=LIST_CSV)]},
        ),
    )

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        index = ImageIndex(root)
        yield from self.csv_records(root, LIST_CSV, lambda row: self._record(root, index, row))

    def _record(self, root: Path, index: ImageIndex, row: dict[str, str]) -> RawRecord:
        image = row["Image"].strip()
        if not image or "/" in image or "\\" in image or image in (".", ".."):
            raise ValueError(f"Image {image!r} is not a file name")
        one = _davis(row["Davis_grading_of_one_figure"], "Davis_grading_of_one_figure")
        concatenated = _davis(row["Davis_grading_of_concatenated_figures"],
                              "Davis_grading_of_concatenated_figures")
        match = _NAME.match(image)
        unit = f"patient:{int(match.group(1))}" if match else f"image:{image.lower()}"
        rel = index.find(image) or image
        file = root / rel
        return RawRecord(
            record_id=_SAFE.sub("_", Path(image).stem), subject_id=unit, files=[rel],
            source_labels={"Davis_grading_of_one_figure": one,
                           "Davis_grading_of_concatenated_figures": concatenated,
                           "grade": DAVIS.index(one), "grading_scale": SCALE},
            split=None,  # the build's keyed hash of the subject
            size_bytes=file.stat().st_size if file.is_file() else 0,
            meta={"laterality": match.group(3).upper() if match else None,
                  "patient_in_name": bool(match)},
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        yield Sample(
            classes=[record.source_labels["Davis_grading_of_one_figure"]],
            source_labels=record.source_labels,
            payloads={"image": image_payload(self, root, record.files[0], {"view": "fundus"})},
            meta=dict(record.meta),
            task="ordinal classification",
        )
