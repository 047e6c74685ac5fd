"""MIMIC-CXR-JPG: 377,110 chest radiographs (JPEG) of 227,827 studies, 64,588 patients (BIDMC).

Raw layout (PhysioNet mimic-cxr-jpg 2.0.0 and 2.1.0; the version folder is the root):
    mimic-cxr-2.0.0-metadata.csv.gz   one row per image: dicom_id, subject_id, study_id,
                                      PerformedProcedureStepDescription, ViewPosition, Rows,
                                      Columns, StudyDate, StudyTime,
                                      ProcedureCodeSequence_CodeMeaning,
                                      ViewCodeSequence_CodeMeaning,
                                      PatientOrientationCodeSequence_CodeMeaning
    mimic-cxr-2.0.0-split.csv.gz      dicom_id, study_id, subject_id, split
                                      (train / validate / test)
    mimic-cxr-2.0.0-chexpert.csv.gz   subject_id, study_id, the 14 observations
    mimic-cxr-2.0.0-negbio.csv.gz     the same columns, from the NegBio labeller
    files/p<first 2 digits of subject>/p<subject_id>/s<study_id>/<dicom_id>.jpg
    The tables are gzip-compressed CSVs, read as shipped; a decompressed `.csv` (CLIMB's
    code unpacks them) is read too. Columns are read by name.

Sources: the PhysioNet project page (https://physionet.org/content/mimic-cxr-jpg/) and
CLIMB code `src/datasets/chest_xray/mimic_cxr.py`, which downloads these files for 2.0.0;
versions 2.0.0 and 2.1.0 keep these table names and this layout (../shared/SOURCES.md).

Labels. Study-level: each image takes its study's row of the labeller table chosen by
`labeler` ("chexpert", default and CLIMB's; or "negbio"). The cells (1.0 / 0.0 / -1.0 /
blank) and the `uncertain` policy are CheXpert's, through the one implementation in
`medshard.sources.cxr.chexpert_labels`: the MIMIC-CXR-JPG paper (Johnson et al. 2019)
ran the CheXpert labeller on the reports, so a row means the same in both datasets and
gives the same unified labels. `source_labels` keeps the 14 cells verbatim, as text. An
image whose study has no labeller row (a few studies have none) is filtered, counted.

Views. `views="frontal"` (default) keeps ViewPosition PA and AP, the two frontal
projections; lateral, decubitus, oblique and blank view positions are filtered and
counted ("not a frontal (PA/AP) view"). `views="all"` keeps every image. Frontal-only is
the choice medshard's issue attributes to CLIMB; CLIMB's public loader (mimic_cxr.py)
joins the split table's dicom_ids without a view filter, so its counts are closer to
`views="all"` (neither matches CLIMB A.2's 348,516 / 7,709 exactly).

Images: the JPEG bytes as shipped (8-bit, full resolution), never re-encoded.

Split: the official `split.csv.gz` as is: train, validate (-> val), test. It is
patient-level (MIMIC-CXR-JPG paper), so no patient is in two splits. An image without a
split row is a bad row of the metadata table (quarantined with its line).

Meta (allow-list): study_id, view_position, view_code_meaning, patient_orientation,
procedure, rows, columns, labeler. StudyDate/StudyTime (shifted dates) are not kept.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.schemas import (
    BadRow,
    Filtered,
    License,
    Payload,
    RawRecord,
    Sample,
    SourceInfo,
)
from medshard.schemas.download import DownloadSpec
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import (
    ROW_ERRORS,
    MissingRawData,
    Source,
    SourceOptions,
    row_error_reason,
)
from medshard.sources.cxr.chexpert_labels import (
    OBSERVATIONS,
    UncertainPolicy,
    observation_cells,
    observation_classes,
    uncertain_option,
)

SLUG = "mimic-cxr"
TABLE_PREFIX = "mimic-cxr-2.0.0-"
SPLITS = {"train": "train", "validate": "val", "test": "test"}
FRONTAL = ("PA", "AP")


class MIMICCXROptions(SourceOptions):
    uncertain: UncertainPolicy = uncertain_option()  # type: ignore[assignment]
    labeler: Literal["chexpert", "negbio"] = Field(
        "chexpert", description="which labeller's table gives the 14 labels: "
        "mimic-cxr-2.0.0-chexpert.csv.gz (CLIMB's) or -negbio.csv.gz",
    )
    views: Literal["frontal", "all"] = Field(
        "frontal", description="keep frontal images only (ViewPosition PA or AP) or every "
        "view; the others are filtered and counted",
    )


def _study_key(row: dict[str, str]) -> tuple[str, str]:
    """(subject_id, study_id) of a row, checked to be the 8-digit MIMIC ids."""
    subject, study = row["subject_id"].strip(), row["study_id"].strip()
    if not (subject.isdigit() and study.isdigit()):
        raise ValueError(f"subject_id {subject!r} / study_id {study!r} are not numeric ids")
    return subject, study


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(float(text)) if text else None


class MIMICCXR(Source):
    Options = MIMICCXROptions
    fixture = "medshard.sources.cxr.mimic_cxr_fixture:FIXTURE"
    payload_members = ("image.jpg",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="MIMIC-CXR-JPG: chest radiographs with structured labels",
        version="2.1.0",
        modality="chest-xray",
        tasks=["multi-label classification"],
        license=License(
            name="PhysioNet Credentialed Health Data License 1.5.0",
            url="https://physionet.org/content/mimic-cxr-jpg/view-license/2.1.0/",
            terms_version="1.5.0",
            credentialed=True,
        ),
        access="credentialed",
        homepage="https://physionet.org/content/mimic-cxr-jpg/2.1.0/",
        citation=(
            "Johnson AEW, Pollard TJ, Greenbaum NR, et al. MIMIC-CXR-JPG, a large publicly "
            "available database of labeled chest radiographs. arXiv:1901.07042 (2019). "
            "PhysioNet, https://doi.org/10.13026/jsn5-t979"
        ),
        label_space=list(OBSERVATIONS),
        split_policy="the official mimic-cxr-2.0.0-split.csv.gz (train / validate -> val / "
        "test), patient-level",
        release_notes={"0.1.0": "first medshard adapter, MIMIC-CXR-JPG 2.0.0 and 2.1.0"},
        published_counts=PublishedCounts(
            train=348516, test=7709, unit="images",
            reference="CLIMB A.2; CLIMB's code takes validate+test as its test split and "
            "does not say which view filter gives these counts",
        ),
    )
    # PhysioNet credentialed project: SHA256SUMS.txt lists and checksums every file
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="mimic-cxr-jpg", version="2.1.0"
    )

    def _table(self, root: Path, name: str) -> str:
        """The relative path of table `name` (e.g. "split"): .csv.gz as shipped, else .csv."""
        for rel in (f"{TABLE_PREFIX}{name}.csv.gz", f"{TABLE_PREFIX}{name}.csv"):
            if (root / rel).is_file():
                return rel
        raise MissingRawData(
            f"{SLUG}: {TABLE_PREFIX}{name}.csv.gz not found in {root}; the data root must be "
            "the MIMIC-CXR-JPG version folder (it holds the mimic-cxr-2.0.0-*.csv.gz tables "
            "and files/)"
        )

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        for name in ("metadata", "split", self._options["labeler"]):
            self._table(root, name)

    def label_files(self, root: Path) -> list[str]:
        return [self._table(root, "split"), self._table(root, self._options["labeler"])]

    @contextmanager
    def _open_table(self, root: Path, rel: str) -> Iterator[io.TextIOBase]:
        path = self.path(root, rel)
        if rel.endswith(".gz"):
            with gzip.open(path, "rt", newline="", encoding="utf-8", errors="strict") as f:
                yield f
        else:
            with open(path, newline="", encoding="utf-8", errors="strict") as f:
                yield f

    def _rows(self, root: Path, rel: str, parse: Callable[[dict[str, str]], Any],
              bad: list[BadRow]) -> Iterator[Any]:
        """parse(row) for each row of a table; a row parse refuses, or a file that stops
        decoding (a truncated gzip, bad UTF-8), becomes a BadRow in `bad`."""
        with self._open_table(root, rel) as f:
            reader = csv.DictReader(f)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeError, EOFError, gzip.BadGzipFile) as exc:
                    bad.append(BadRow(rel, reader.line_num + 1, row_error_reason(exc),
                                      type(exc).__name__))
                    return  # a decoder cannot resync
                try:
                    yield parse(row)
                except ROW_ERRORS as exc:
                    bad.append(BadRow(rel, reader.line_num, row_error_reason(exc),
                                      type(exc).__name__))

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per image of the metadata table; labels and split joined by id."""
        self.check_root(root)
        bad: list[BadRow] = []
        split_rel = self._table(root, "split")
        splits: dict[str, str] = {}
        for dicom_id, split in self._rows(
                root, split_rel,
                lambda r: (r["dicom_id"].strip(), SPLITS[r["split"].strip()]), bad):
            splits[dicom_id] = split
        labels_rel = self._table(root, self._options["labeler"])
        labels: dict[tuple[str, str], dict[str, str] | None] = {}

        def label_row(row: dict[str, str]) -> None:
            key = _study_key(row)
            labels[key] = None  # a malformed row still names its study: its images are bad
            labels[key] = observation_cells(row)

        for _ in self._rows(root, labels_rel, label_row, bad):
            pass
        yield from bad
        bad.clear()
        meta_rel = self._table(root, "metadata")
        yield from self._rows(root, meta_rel,
                              lambda r: self._record(root, r, splits, labels), bad)
        yield from bad

    def _record(self, root: Path, row: dict[str, str], splits: dict[str, str],
                labels: dict[tuple[str, str], dict[str, str] | None]) -> RawRecord:
        dicom_id = row["dicom_id"].strip()
        subject, study = _study_key(row)
        rel = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.jpg"
        view = (row.get("ViewPosition") or "").strip() or None
        meta: dict[str, Any] = {
            "study_id": study,
            "view_position": view,
            "view_code_meaning": (row.get("ViewCodeSequence_CodeMeaning") or "").strip() or None,
            "patient_orientation":
                (row.get("PatientOrientationCodeSequence_CodeMeaning") or "").strip() or None,
            "procedure": (row.get("PerformedProcedureStepDescription") or "").strip() or None,
            "rows": _int_or_none(row.get("Rows")),
            "columns": _int_or_none(row.get("Columns")),
            "labeler": self._options["labeler"],
        }
        if (subject, study) in labels and labels[(subject, study)] is None:
            raise ValueError(f"the labeller row of study {study} is malformed (quarantined "
                             "with its line)")
        if dicom_id not in splits:
            raise ValueError(f"image {dicom_id} has no row in {TABLE_PREFIX}split.csv.gz")
        file = root / rel
        return RawRecord(
            record_id=dicom_id,
            subject_id=subject,
            files=[rel],
            source_labels=labels.get((subject, study)) or {},
            split=splits[dicom_id],  # type: ignore[arg-type]
            size_bytes=file.stat().st_size if file.is_file() else 0,
            meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        view = record.meta.get("view_position")
        if self._options["views"] == "frontal" and view not in FRONTAL:
            raise Filtered("not a frontal (PA/AP) view")
        if not record.source_labels:
            raise Filtered("study has no row in the labeller table")
        data = self.read_bytes(root, record.files[0])
        yield Sample(
            classes=observation_classes(record.source_labels, self._options["uncertain"]),
            source_labels=record.source_labels,
            payloads={
                "image": Payload(
                    "image", data, {"view": view, "source_encoding": "jpeg", "bit_depth": 8}
                )
            },
            meta=dict(record.meta),
            task="multi-label classification",
        )
