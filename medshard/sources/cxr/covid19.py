"""COVID-19 Detection X-Ray: 2,990 chest radiographs in four classes (Kaggle, darshan1504).

Raw layout (Kaggle darshan1504/covid19-detection-xray-dataset):
    TrainData/<class>/<image>     the release's training images
    ValData/<class>/<image>       its held-out images (CLIMB's test split)
    <class>: Normal, BacterialPneumonia, ViralPneumonia, COVID-19; images JPEG or PNG,
    walked recursively; files outside the class folders are not part of the set.
    metadata.csv (optional): ieee8023/covid-chestxray-dataset's table, put here by the
    user; read by name: patientid, finding, view, modality, filename (nothing else).

Sources: CLIMB code `src/datasets/chest_xray/covid19.py` (the folders and class names it
reads) and the Kaggle dataset page; the upstream's metadata.csv columns from
github.com/ieee8023/covid-chestxray-dataset. The COVID-19 images come from that upstream
(Cohen et al.), the others from Kermany et al.'s paediatric pneumonia set. The upstream's
free-text and date columns are never read, so they never leave the source.

Labels: the class folder, verbatim (`source_labels`: {"class_folder": ...}). COVID-19 is
its own class and also maps to cxr.viral-pneumonia and cxr.pneumonia
(docs/vocabulary.md). For an image found in metadata.csv, its `finding`, `view` and
`modality` travel in meta; an image whose upstream modality is not X-ray is filtered.

Split. The Kaggle release has no patient column. The subject is the patient where one
can be known: the upstream metadata.csv's `patientid` for a COVID-19 image it lists
(matched by file name), Kermany's person<N> from a pneumonia file name
(person<N>_<bacteria|virus>_<M>), else the image itself (normal images; COVID-19 images
without metadata.csv); meta["subject_from"] says which. `split`:
  - "patient" (default): every image by a keyed hash of its subject, `test_fraction` of
    the subjects to test and `val_fraction` of the rest to val, so no known patient is in
    two splits (the release's TrainData/ValData folders do not promise that);
  - "official": CLIMB's split, TrainData -> train (val carved by subject hash) and
    ValData -> test; a patient may then straddle train and test. CLIMB's published
    counts (2,002 / 988) are for this split.
Images: the JPEG/PNG bytes as shipped.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.schemas import BadRow, Filtered, License, Payload, RawRecord, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import (
    ROW_ERRORS,
    CarveValOptions,
    MissingRawData,
    Source,
    row_error_reason,
)
from medshard.sources.cxr.pneumonia_images import (
    IMAGE_SUFFIXES,
    image_record_id,
    kermany_patient,
)
from medshard.sources.splits import hash_split

SLUG = "covid-19"
CLASSES = ("Normal", "BacterialPneumonia", "ViralPneumonia", "COVID-19")
FOLDERS = {"TrainData": "train", "ValData": "test"}
# short record-id prefixes, so that ids keep the release's file names readable
_FOLDER_ID = {"TrainData": "tr", "ValData": "va"}
_CLASS_ID = {"Normal": "normal", "BacterialPneumonia": "bacterial",
             "ViralPneumonia": "viral", "COVID-19": "covid"}
UPSTREAM_METADATA = "metadata.csv"


def record_id_for(folder: str, cls: str, name: str) -> str:
    """The record id of `<folder>/<cls>/<name>` (name relative to the class folder)."""
    return image_record_id(f"{_FOLDER_ID[folder]}-{_CLASS_ID[cls]}", name)


class Covid19Options(CarveValOptions):
    split: Literal["patient", "official"] = Field(
        "patient", description="split by keyed hash of the patient where one is known "
        "(default), or CLIMB's TrainData/ValData folders (a patient may straddle them)",
    )
    test_fraction: float = Field(
        0.33, ge=0.0, lt=1.0,
        description="with split='patient': share of subjects in test (the release's "
        "ValData holds 988 of 2,990 images)",
    )


class Covid19(Source):
    Options = Covid19Options
    fixture = "medshard.sources.cxr.covid19_fixture:FIXTURE"
    payload_members = ("image.jpg", "image.png")
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="COVID-19 Detection X-Ray Dataset (normal, bacterial, viral, COVID-19)",
        version="Kaggle release as downloaded (the dataset page shows no pinned version)",
        modality="chest-xray",
        tasks=["classification"],
        license=License(
            name="CC BY 4.0",
            spdx="CC-BY-4.0",
            url="https://www.kaggle.com/datasets/darshan1504/covid19-detection-xray-dataset",
            terms_version="4.0",
        ),
        access="open",
        homepage="https://www.kaggle.com/datasets/darshan1504/covid19-detection-xray-dataset",
        citation=(
            "Darshan Thakkar. COVID-19 Detection X-Ray Dataset. Kaggle (2020). Images from "
            "Cohen JP, Morrison P, Dao L. COVID-19 image data collection. arXiv:2003.11597 "
            "(2020); and Kermany D, Zhang K, Goldbaum M. Mendeley Data v2 (2018), "
            "doi:10.17632/rscbjbr9sj.2."
        ),
        label_space=list(CLASSES),
        split_policy="keyed hash of the patient where one is known (upstream metadata.csv "
        "patientid, Kermany person<N>), else of the image; option split='official' gives "
        "CLIMB's TrainData/ValData",
        split_unit="patient where known (COVID-19 images listed in the upstream "
        "metadata.csv; Kermany pneumonia file names), else the image",
        release_notes={"0.1.0": "first medshard adapter"},
        published_counts=PublishedCounts(
            train=2002, test=988, unit="images",
            reference="CLIMB A.2, for split='official' (TrainData / ValData)",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="kaggle", dataset="darshan1504/covid19-detection-xray-dataset"
    )

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any((root / folder).is_dir() for folder in FOLDERS):
            raise MissingRawData(
                f"{SLUG}: neither TrainData/ nor ValData/ found in {root}; the data root must "
                "be the folder unpacked from the Kaggle archive"
            )

    def label_files(self, root: Path) -> list[str]:
        return [UPSTREAM_METADATA] if (root / UPSTREAM_METADATA).is_file() else []

    def _upstream(self, root: Path, bad: list[BadRow]) -> dict[str, dict[str, str]]:
        """file name -> {patientid, finding, view, modality} from the optional metadata.csv."""
        if not (root / UPSTREAM_METADATA).is_file():
            return {}
        out: dict[str, dict[str, str]] = {}
        with open(self.path(root, UPSTREAM_METADATA), newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                try:
                    name, patient = row["filename"].strip(), row["patientid"].strip()
                    if not name or not patient:
                        raise ValueError("filename or patientid is blank")
                    out[name] = {k: (row.get(k) or "").strip()
                                 for k in ("patientid", "finding", "view", "modality")}
                except ROW_ERRORS as exc:
                    bad.append(BadRow(UPSTREAM_METADATA, reader.line_num,
                                      row_error_reason(exc), type(exc).__name__))
        return out

    def _images(self, root: Path, folder: str, cls: str) -> list[str]:
        """Image files under <folder>/<cls>/, relative to the class folder, sorted."""
        base = root / folder / cls
        found = []
        if not isinstance(base, Path):  # a root on object storage (medshard.formats.remote)
            return sorted(p.relative_to(base).as_posix() for p in base.rglob("*")
                          if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        for dirpath, dirnames, files in os.walk(base):
            dirnames.sort()
            for name in files:
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    found.append((Path(dirpath) / name).relative_to(base).as_posix())
        return sorted(found)

    def _split(self, folder: str, subject: str) -> str | None:
        if self._options["split"] == "official":
            return self.carve_val(FOLDERS[folder], subject)
        test = float(self._options["test_fraction"])
        val = (1.0 - test) * float(self._options["val_fraction"])
        return hash_split(self.info.name, subject,
                          {"train": 1.0 - test - val, "val": val, "test": test})

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        self.check_root(root)
        bad: list[BadRow] = []
        upstream = self._upstream(root, bad)
        yield from bad
        seen: set[str] = set()
        for folder in FOLDERS:
            for cls in CLASSES:
                for name in self._images(root, folder, cls):
                    rel = f"{folder}/{cls}/{name}"
                    record_id = record_id_for(folder, cls, name)
                    if record_id in seen:  # a.jpg beside a.png: both would be one sample
                        yield BadRow(rel, 1, f"record id {record_id} is also another file's "
                                     "(same name, other extension); rename one", "ValueError")
                        continue
                    seen.add(record_id)
                    up = upstream.get(Path(name).name)
                    if up:
                        subject, subject_from = f"ieee8023-{up['patientid']}", "metadata.csv"
                    elif kermany_patient(Path(name).name):
                        subject, subject_from = kermany_patient(Path(name).name), "file name"
                    else:
                        subject, subject_from = record_id, "image"
                    file = root / rel
                    meta: dict[str, Any] = {
                        "folder": folder,
                        "file_name": name,
                        "subject_from": subject_from,
                        "upstream_finding": up["finding"] or None if up else None,
                        "upstream_view": up["view"] or None if up else None,
                        "upstream_modality": up["modality"] or None if up else None,
                    }
                    yield RawRecord(
                        record_id=record_id,
                        subject_id=subject,
                        files=[rel],
                        source_labels={"class_folder": cls},
                        split=self._split(folder, subject),  # type: ignore[arg-type]
                        size_bytes=file.stat().st_size if not file.is_symlink() else 0,
                        meta=meta,
                    )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        modality = record.meta.get("upstream_modality")
        if modality and modality.lower() not in ("x-ray", "xray", "cr", "dx"):
            raise Filtered("upstream metadata.csv says the image is not an X-ray")
        data = self.read_bytes(root, record.files[0])
        yield Sample(
            classes=[record.source_labels["class_folder"]],
            source_labels=record.source_labels,
            payloads={"image": Payload("image", data, {"view": record.meta["upstream_view"]})},
            meta=dict(record.meta),
            task="classification",
        )
