"""RSPECT: the RSNA-STR Pulmonary Embolism CT dataset (Kaggle, 2020), one sample per series.

Raw layout (Kaggle competition `rsna-str-pulmonary-embolism-detection`, "Data" tab;
the RSNA AI-Challenge-Data wiki; CLIMB's `src/datasets/ct/rspect.py`, which reads the
same files):
    train.csv                                        one row per training image (1.79M)
    train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    test.csv, test/...                               unlabelled (Kaggle's hidden-label
                                                     test set): not read
train.csv columns: StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID,
pe_present_on_image (per image), then per study (the same on every row of a study):
negative_exam_for_pe, qa_motion, qa_contrast, flow_artifact, rv_lv_ratio_gte_1,
rv_lv_ratio_lt_1, leftsided_pe, chronic_pe, true_filling_defect_not_pe, rightsided_pe,
acute_and_chronic_pe, central_pe, indeterminate. The ids are 12 hex digits in the
Kaggle release (the folder and file names); dotted DICOM UIDs are accepted too (a dot
becomes `-` in the record id). The training set holds 7,279 studies (RSNA wiki) and
1,790,594 images (CLIMB A.2).
Sources of the facts: the folder layout, the file names and the 17 columns from CLIMB's
reader (DDVD233/CLIMB `src/datasets/ct/rspect.py`) and the RSNA AI-Challenge-Data wiki
page of the challenge; the study count from that wiki. The label semantics below
(negative / indeterminate / positive exams; chronic_pe and acute_and_chronic_pe
exclusive, neither = acute) follow the competition's label hierarchy, which could not be
re-read from the Kaggle data page or Colak et al. 2021 in this session (offline): the
combinations that hierarchy forbids are quarantined as contradictory, never resolved.

Listing is per series and cheap: train.csv alone gives every image's study and series,
so records come from the CSV without opening a DICOM or listing a folder (a file named
in the CSV but absent is found by `load` and quarantined). While listing, each series
keeps its SOP ids in one byte string; a record is the series' file list plus one
0/1 per image: ~50 bytes per image in the driver.

One series gives one sample (`volume.npy`, int16 HU for RSPECT's slope 1 / intercept
-1024; see `medshard.formats.dicom_series` for the dtype rule):
  - slices sorted by ImagePositionPatient projected on the slice normal (the cross
    product of ImageOrientationPatient's cosines); spacing from the positions, never
    SliceThickness; HU by each slice's RescaleSlope / RescaleIntercept;
  - RAS+ array and affine (DICOM's LPS flipped on x and y, axes permuted/flipped to the
    closest canonical orientation, never resampled), as KiTS23's volumes;
  - filled slice by slice into one preallocated array: peak memory is the voxel bytes
    plus one slice (benchmarks/memory_volumes.py).
Quarantine vs flag (the issue asks for both to be caught with reasons):
  - a gap (a step > `gap_factor` x the median step: a missing slice), two slices at one
    position, irregular steps, or slices of different size: quarantined. A volume with
    a hole has no single voxel grid; filling or closing the hole would invent anatomy or
    put every later slice at the wrong place, so no volume is written.
  - a slice whose orientation differs from the series' majority (a localizer or reformat
    filed with the series): quarantined by default (`orientation_outliers="quarantine"`),
    since the issue asks for it and a series mixing planes may be mislabelled as a whole;
    with `"drop"` the odd slices are left out of the volume and listed, with the reason,
    in `meta["excluded_slices"]` (the rest must still form one regular grid).
A slice file that is missing, not DICOM or cut short quarantines its series (no partial
volumes).

Labels (study level; CLIMB's 3 classes "No PE", "Chronic PE", "Acute PE"):
  - negative_exam_for_pe = 1 -> "No PE";
  - indeterminate = 1 -> filtered (the readers could not call the exam: no class);
  - otherwise a PE-positive exam: chronic_pe = 1 -> "Chronic PE"; acute_and_chronic_pe
    = 1 -> "Acute and Chronic PE" (concepts acute + chronic), or "Acute PE" with
    `acute_and_chronic="acute"`, CLIMB's rule; neither -> "Acute PE".
  CLIMB labels single slices (pe_present_on_image 0 -> No PE; else chronic_pe -> Chronic;
  else Acute) and folds acute_and_chronic_pe into Acute, losing the chronic component;
  medshard keeps it by default (docs/vocabulary.md). A volume's class is its exam's.
  `source_labels` holds the 13 study columns verbatim (ints); the per-image label is in
  `meta["pe_present_on_image"]`, one 0/1 per volume slice in array order along
  `meta["slice_axis"]`, with `meta["sop_instance_uids"]` in the same order.
Rows of one series that disagree on a study column, or a malformed row (a label that is
not 0/1, a missing id), quarantine the series; the row itself is quarantined at stage
`list` with its line.

Metadata: the first slice's allow-listed DICOM attributes (`medshard.formats.dicom`),
sex and age; window center/width; slice count and spacing from positions. Patient names,
ids, dates and institutions never leave the files.

Memory (benchmarks/memory_volumes.py, measured 2026-12-01): planning 2,000,000 DICOMs
(8,131 series) keeps 56 bytes per DICOM in the driver (132 MB peak RSS growth; one record
per DICOM would keep 682 B); a build's peak RSS stays flat when the series grow 10x
(37 MB -> 43 MB over the baseline); one 1000-slice 512 x 512 series (500 MB of int16
voxels) peaks at 1.01x its voxel bytes in `load` and 1.06x in a WebDataset build. A
Parquet build needs ~6x (a payload is one Parquet cell: see benchmarks/README.md).

Split: Kaggle's test set has no labels, so there is no labelled official split; the
pipeline assigns one by a keyed hash of the study (the subject: the release carries no
patient identity across studies). CLIMB splits single images at random 75/25, which
puts slices of one exam in both train and test; its published image counts are declared
for reference only (the unit differs: medshard counts series).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from medshard.formats.dicom_series import fill_volume, plan_series, read_slice_header
from medshard.formats.nifti import volume_payload
from medshard.schemas import (
    BadRow,
    Filtered,
    License,
    RawRecord,
    RecordError,
    Sample,
    SourceInfo,
)
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import MissingRawData, Source, SourceOptions

SLUG = "rspect"
INDEX = "train.csv"
ID_COLUMNS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
IMAGE_COLUMN = "pe_present_on_image"
STUDY_COLUMNS: tuple[str, ...] = (
    "negative_exam_for_pe", "qa_motion", "qa_contrast", "flow_artifact", "rv_lv_ratio_gte_1",
    "rv_lv_ratio_lt_1", "leftsided_pe", "chronic_pe", "true_filling_defect_not_pe",
    "rightsided_pe", "acute_and_chronic_pe", "central_pe", "indeterminate",
)
LABELS = ("No PE", "Chronic PE", "Acute PE", "Acute and Chronic PE")
INDETERMINATE = "indeterminate exam (the readers could not call it): no PE class"
# Kaggle ids are 12 hex digits; a dotted DICOM UID (digits and single dots) is accepted
_UID = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$")
# planning estimate per slice: RSPECT's CTPA slices are 512 x 512, int16 after rescale
SLICE_BYTES_ESTIMATE = 512 * 512 * 2


def _uid(row: dict[str, str], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not _UID.match(value) or len(value) > 64:
        raise ValueError(f"{column} {value[:40]!r} is not a DICOM UID or RSPECT id")
    return value


def _flag(row: dict[str, str], column: str) -> int:
    text = (row.get(column) or "").strip()
    if text not in ("0", "1"):
        raise ValueError(f"{column} is {text[:20]!r}, not 0 or 1")
    return int(text)


@dataclass
class _SeriesRows:
    """What listing keeps per series until the CSV is read: compact, ~14 bytes per image."""

    study_labels: tuple[int, ...] | None = None
    sops: bytearray = field(default_factory=bytearray)  # b"sop\n" per image
    flags: bytearray = field(default_factory=bytearray)  # pe_present_on_image per image
    problems: list[str] = field(default_factory=list)


class RSPECTOptions(SourceOptions):
    orientation_outliers: Literal["quarantine", "drop"] = Field(
        "quarantine", description="a slice whose orientation differs from the series': "
        "quarantine the series, or drop the slice (listed in meta excluded_slices)")
    acute_and_chronic: Literal["own-class", "acute"] = Field(
        "own-class", description="acute_and_chronic_pe exams: 'Acute and Chronic PE' "
        "(acute + chronic concepts), or 'Acute PE' as CLIMB folds them")
    gap_factor: float = Field(
        1.5, gt=1.0, le=10.0, description="a step between slice positions larger than this "
        "times the median step is a gap (missing slice): the series is quarantined")


class RSPECT(Source):
    Options = RSPECTOptions
    fixture = "medshard.sources.ct.rspect_fixture:FIXTURE"
    payload_members = ("volume.npy",)
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.kaggle.com/c/rsna-str-pulmonary-embolism-detection/data",
        steps=[
            "Sign in to Kaggle and accept the competition rules of "
            "rsna-str-pulmonary-embolism-detection (Rules tab).",
            "kaggle competitions download -c rsna-str-pulmonary-embolism-detection "
            "(about 900 GB unzipped), then unzip it.",
            "Put train.csv and the train/ folder in the folder named below.",
        ],
        layouts={"competition": [FileSpec(path="train.csv")]},
    ))
    demographic_fields = {"sex": "sex", "age_years": "age"}
    required_files = (INDEX,)
    root_hint = "it must be the unzipped competition folder holding train.csv and train/"
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="RSPECT: RSNA-STR Pulmonary Embolism CT dataset (CT pulmonary angiograms)",
        version="2020 (Kaggle competition release)",
        modality="ct",
        tasks=["classification"],
        license=License(
            # non-commercial research and education, no re-identification, cite (RSNA wiki)
            name="RSNA-STR Pulmonary Embolism CT Dataset terms (Kaggle competition rules)",
            url="https://www.kaggle.com/c/rsna-str-pulmonary-embolism-detection/rules",
            terms_version="2020",
            non_commercial=True,
        ),
        access="registration",
        homepage="https://www.kaggle.com/c/rsna-str-pulmonary-embolism-detection",
        citation=(
            "Colak E, Kitamura FC, Hobbs SB, et al. The RSNA Pulmonary Embolism CT Dataset. "
            "Radiology: Artificial Intelligence 3(2):e200254 (2021). "
            "RSNA-STR Pulmonary Embolism CT (RSPECT) Dataset, Copyright RSNA, 2020."
        ),
        label_space=list(LABELS),
        split_policy="Kaggle's test set is unlabelled: keyed hash of the study",
        split_unit="study (all series of a study share its split; the release carries no "
        "patient identity across studies)",
        release_notes={"0.1.0": "first medshard adapter: one RAS volume per series, study "
                       "labels, per-image labels in meta"},
        published_counts=PublishedCounts(
            train=1342945, test=447649, unit="images (DICOM slices)",
            reference="CLIMB A.2, a random image-level 75/25 split; medshard writes one "
            "sample per series (7,279 training studies), so its counts differ by design",
        ),
    )

    def label_classes(self) -> list[str]:
        if self._options["acute_and_chronic"] == "acute":
            return [c for c in LABELS if c != "Acute and Chronic PE"]
        return list(LABELS)

    # -- listing ---------------------------------------------------------------

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per (study, series) of train.csv; no DICOM is opened."""
        self.check_root(root)
        series: dict[tuple[str, str], _SeriesRows] = {}
        with open(self.path(root, INDEX), newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in (*ID_COLUMNS, IMAGE_COLUMN, *STUDY_COLUMNS)
                       if c not in (reader.fieldnames or [])]
            if missing:
                raise MissingRawData(f"{SLUG}: {INDEX} lacks the columns {missing[:3]}; "
                                     "re-download it from the competition's data page")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except (csv.Error, UnicodeError) as exc:
                    yield BadRow(INDEX, reader.line_num + 1, f"{type(exc).__name__}: {exc}"[:300],
                                 type(exc).__name__)
                    break
                line = reader.line_num
                try:
                    study, ser = _uid(row, ID_COLUMNS[0]), _uid(row, ID_COLUMNS[1])
                    sop = _uid(row, ID_COLUMNS[2])
                except ValueError as exc:  # no series to attach it to: the row alone
                    yield BadRow(INDEX, line, str(exc))
                    continue
                acc = series.get((study, ser))
                if acc is None:
                    acc = series[(study, ser)] = _SeriesRows()
                try:
                    flag = _flag(row, IMAGE_COLUMN)
                    labels = tuple(_flag(row, c) for c in STUDY_COLUMNS)
                except ValueError as exc:
                    acc.problems.append(f"{INDEX} line {line} of this series is malformed ({exc})")
                    yield BadRow(INDEX, line, str(exc))
                    continue
                if acc.study_labels is None:
                    acc.study_labels = labels
                elif labels != acc.study_labels and len(acc.problems) < 3:
                    diff = [c for c, a, b in zip(STUDY_COLUMNS, labels, acc.study_labels,
                                                 strict=True) if a != b]
                    acc.problems.append(f"{INDEX} line {line} gives other study labels "
                                        f"({', '.join(diff)}) than earlier rows of the series")
                acc.sops += sop.encode() + b"\n"
                acc.flags.append(flag)
        for (study, ser) in sorted(series):
            yield self._record(study, ser, series.pop((study, ser)))

    def _record(self, study: str, ser: str, acc: _SeriesRows) -> RawRecord:
        sops = acc.sops.decode().split()
        order = sorted(range(len(sops)), key=sops.__getitem__)
        prefix = f"train/{study}/{ser}/"
        meta: dict[str, Any] = {"pe_present_on_image": [acc.flags[i] for i in order]}
        if acc.problems:
            meta["problems"] = acc.problems
        return RawRecord(
            record_id=f"{study}_{ser}".replace(".", "-"),
            subject_id=study,
            files=[f"{prefix}{sops[i]}.dcm" for i in order],
            source_labels=dict(zip(STUDY_COLUMNS, acc.study_labels, strict=True))
            if acc.study_labels is not None else {},
            meta=meta,
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return max(len(record.files) * SLICE_BYTES_ESTIMATE, 1)

    # -- loading ---------------------------------------------------------------

    def study_class(self, labels: dict[str, int]) -> str:
        """The exam's class from its study columns (see the module docstring)."""
        if labels["negative_exam_for_pe"] == 1:
            if labels["indeterminate"] == 1 or labels["chronic_pe"] or labels["acute_and_chronic_pe"]:
                raise RecordError("negative_exam_for_pe = 1 together with indeterminate or a "
                                  "chronic flag: contradictory study labels in train.csv")
            return "No PE"
        if labels["indeterminate"] == 1:
            raise Filtered(INDETERMINATE)
        if labels["chronic_pe"] == 1 and labels["acute_and_chronic_pe"] == 1:
            raise RecordError("chronic_pe and acute_and_chronic_pe are both 1; the competition "
                              "defines them as exclusive: contradictory study labels")
        if labels["chronic_pe"] == 1:
            return "Chronic PE"
        if labels["acute_and_chronic_pe"] == 1:
            return ("Acute PE" if self._options["acute_and_chronic"] == "acute"
                    else "Acute and Chronic PE")
        return "Acute PE"

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        problems = record.meta.get("problems")
        if problems:
            raise RecordError("; ".join(problems))
        if not record.source_labels:
            raise RecordError(f"no valid {INDEX} row for this series")
        cls = self.study_class(record.source_labels)
        names = [rel.rsplit("/", 1)[-1] for rel in record.files]
        paths = [self.path(root, rel) for rel in record.files]
        headers = [read_slice_header(p, i, n) for i, (p, n) in enumerate(zip(paths, names,
                                                                             strict=True))]
        plan = plan_series(headers, names, gap_factor=float(self._options["gap_factor"]))
        if plan.excluded and self._options["orientation_outliers"] == "quarantine":
            plan.problems = plan.excluded + plan.problems
        volume = fill_volume(plan, paths, names)
        order = list(reversed(plan.order)) if volume.slice_axis_flipped else list(plan.order)
        flags = record.meta["pe_present_on_image"]
        excluded = [] if self._options["orientation_outliers"] == "quarantine" else [
            {"sop_instance_uid": names[p.slices[0]][:-4],
             "pe_present_on_image": int(flags[p.slices[0]]), "reason": p.message}
            for p in plan.excluded]
        meta: dict[str, Any] = {
            **volume.meta,
            "n_slices": len(order),
            "slice_axis": volume.slice_axis,
            "slice_spacing_mm": round(abs(plan.slice_spacing_mm), 6),
            "slice_step_max_deviation_mm": round(plan.max_step_deviation_mm, 6),
            "pe_present_on_image": [int(flags[i]) for i in order],
            "sop_instance_uids": [names[i][:-4] for i in order],
            "excluded_slices": excluded,
            "window_center": volume.window_center,
            "window_width": volume.window_width,
        }
        affine = volume.affine
        yield Sample(
            classes=[cls],
            source_labels={k: int(v) for k, v in record.source_labels.items()},
            payloads={"volume": volume_payload(volume.array, affine, units="HU")},
            meta=meta,
            task="classification",
        )
