"""Kermany 2018 retinal OCT: B-scans labelled CNV, DME, DRUSEN or NORMAL (Cell 2018).

Raw layout (<release> is ZhangLabData/CellData/OCT from Mendeley, OCT2017 from Kaggle):
    <release>/{train,test}/{CNV,DME,DRUSEN,NORMAL}/<DISEASE>-<patient>-<n>.jpeg
    OCT2017/val/<class>/...            Kaggle copy only (8 images per class)
Sources: Mendeley Data "Large Dataset of Labeled Optical Coherence Tomography (OCT) and
Chest X-Ray Images", doi:10.17632/rscbjbr9sj (unpacks to `ZhangLabData/CellData/OCT/`);
the Kaggle copy `paultimothymooney/kermany2018` (unpacks to `OCT2017/`).
The dataset's description (quoted by the Kaggle page and in many READMEs): images are
"labeled as (disease)-(randomized patient ID)-(image number by this patient)", and the
train and test sets are "of independent patients". JPEG, grey, Spectralis (Heidelberg)
scans. Counts differ by version: MultiMed counts 84,495 images (the Kaggle copy);
108,309 train + 1,000 test in the Mendeley v3 archive (a third-party count of the zip).
The root may be the release folder (holding train/) or a folder holding `OCT2017/`,
`OCT/`, `CellData/OCT/` or `ZhangLabData/CellData/OCT/`.

Labels: the class folder; the file name's disease prefix must agree (else a bad entry).

Splits: `test/` is test (the authors' patient-independent test set). `train/` is split
into train and val by a keyed hash of the patient id from the file name, so one patient's
scans (of every disease) never straddle train and val. The Kaggle copy's `val/` (32 images
carved by the uploader, patients not checked against train) joins the train pool and is
carved the same way; its images keep `release_folder: val` in meta.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from medshard.schemas import BadRow, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import CarveValOptions, MissingRawData, Source
from medshard.sources.folders import files_in, first_existing_dir

CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")
RELEASE_DIRS = ("", "OCT2017", "OCT", "CellData/OCT", "ZhangLabData/CellData/OCT")
FOLDERS = {"train": "train", "val": "train", "test": "test"}  # release folder -> official split
_NAME = re.compile(r"^(?P<disease>[A-Z]+)-(?P<patient>\d+)-(?P<n>\d+)\.jpe?g$", re.IGNORECASE)


def parse_name(name: str) -> tuple[str, str, int]:
    """`CNV-1016042-1.jpeg` -> ("CNV", "1016042", 1); ValueError for another pattern."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"file name {name!r} is not <DISEASE>-<patient id>-<n>.jpeg")
    return m["disease"].upper(), m["patient"], int(m["n"])


class KermanyOCT(Source):
    Options = CarveValOptions
    fixture = "medshard.sources.oct.kermany_fixture:FIXTURE"
    payload_members = ("image.jpg",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="kermany-oct",
        title="Labeled optical coherence tomography (OCT) images (Kermany, Zhang, Goldbaum 2018)",
        version="Mendeley Data v3 (2018); Kaggle kermany2018 (OCT2017)",
        modality="oct",
        tasks=["classification"],
        license=License(name="CC BY 4.0", spdx="CC-BY-4.0",
                        url="https://data.mendeley.com/datasets/rscbjbr9sj/3",
                        terms_version="4.0"),
        access="open",
        homepage="https://data.mendeley.com/datasets/rscbjbr9sj/3",
        citation=(
            "Kermany DS, Goldbaum M, Cai W, et al. Identifying Medical Diagnoses and Treatable "
            "Diseases by Image-Based Deep Learning. Cell. 2018;172(5):1122-1131. Data: Kermany D, "
            "Zhang K, Goldbaum M. Mendeley Data 2018, doi:10.17632/rscbjbr9sj."
        ),
        label_space=list(CLASSES),
        split_policy="test/ is test; train/ (and the Kaggle copy's val/) split train/val by "
        "keyed hash of the patient id in the file name",
        release_notes={"0.1.0": "first medshard adapter (Mendeley and Kaggle layouts)"},
        published_counts=PublishedCounts(
            unit="images",
            reference="MultiMed: 84,495 images, no per-split counts (the Kaggle copy); the "
            "Mendeley v3 archive holds 108,309 train + 1,000 test",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="manual",
        manual=ManualSteps(
            url="https://data.mendeley.com/datasets/rscbjbr9sj/3",
            steps=[
                "Download ZhangLabData.zip from the Mendeley Data page (or the Kaggle copy "
                "'paultimothymooney/kermany2018').",
                "Unpack it into the folder named below (ZhangLabData/CellData/OCT/ or OCT2017/ "
                "inside it, or the OCT folder's train/ and test/ directly).",
            ],
            layouts={
                "mendeley": [FileSpec(path="ZhangLabData/CellData/OCT/train"),
                             FileSpec(path="ZhangLabData/CellData/OCT/test")],
                "kaggle": [FileSpec(path="OCT2017/train"), FileSpec(path="OCT2017/test")],
                "flat": [FileSpec(path="train"), FileSpec(path="test")],
            },
            archives=[FileSpec(path="ZhangLabData.zip"), FileSpec(path="OCT2017.tar.gz")],
        ),
    )

    def release_dir(self, root: Path) -> str:
        for rel in RELEASE_DIRS:
            base = f"{rel}/" if rel else ""
            if first_existing_dir(root, [f"{base}train", f"{base}test"]) is not None:
                return rel
        raise MissingRawData(f"kermany-oct: no train/ or test/ folder in {root} or in "
                             f"{root}/{{OCT2017,OCT,CellData/OCT,ZhangLabData/CellData/OCT}}/; "
                             "unpack the dataset there")

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self.release_dir(root)

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        release = self.release_dir(root)
        for folder, official in FOLDERS.items():
            for cls in CLASSES:
                rel_dir = f"{release}/{folder}/{cls}" if release else f"{folder}/{cls}"
                for f in files_in(root, rel_dir, (".jpeg", ".jpg")):
                    try:
                        disease, patient, _ = parse_name(f.name)
                        if disease != cls:
                            raise ValueError(f"file name says {disease}, its folder {cls}")
                    except ValueError as exc:
                        yield BadRow(f.rel, 0, str(exc))
                        continue
                    yield RawRecord(
                        record_id=f"{folder}_{f.name.rsplit('.', 1)[0]}",
                        subject_id=patient,
                        files=[f.rel],
                        source_labels={"class": cls},
                        split=self.carve_val(official, patient),  # type: ignore[arg-type]
                        size_bytes=f.size,
                        meta={"release_folder": folder},
                    )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        data = self.read_bytes(root, record.files[0])
        yield Sample(
            classes=[record.source_labels["class"]],
            source_labels=record.source_labels,
            payloads={"image": Payload("image", data, {"source_encoding": "jpeg"})},
            meta=dict(record.meta),
            task="classification",
        )
