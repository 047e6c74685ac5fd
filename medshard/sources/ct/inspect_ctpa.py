"""INSPECT: CT pulmonary angiograms of Stanford patients with PE labels (Stanford AIMI).

Raw layout (Stanford AIMI; sources below):
    CTPA/<impression_id>.nii.gz     one CTPA per study (NIfTI, HU)
    labels_<YYYYMMDD>.tsv           impression_id, pe_positive (or pe_positive_nlp), pe_acute,
                                    pe_subsegmentalonly, 1/6/12_month_mortality,
                                    1/6/12_month_readmission, 12_month_PH, ... (tab-separated)
    splits_<YYYYMMDD>.tsv           impression_id, split (train / valid / test): the official
                                    patient-level split
    study_mapping_<YYYYMMDD>.tsv    impression_id -> image_id (and the patient, where a
                                    person_id / patient_id column is present)
    Final_Impressions_labels.csv    CLIMB's label file (impression_id, pe_positive, pe_acute,
                                    pe_subsegmentalonly), read when no labels_*.tsv exists
    impressions / EHR (OMOP CSVs, FEMR extract) are never read: the EHR is out of scope and
                                    the impression text stays out of the shards.
Sources: Huang et al. 2023 (arXiv 2311.10798) and the `som-shahlab/INSPECT_public` README;
the 2025-06-11 table drop (`labels_20250611.tsv`, `splits_20250611.tsv`,
`study_mapping_20250611.tsv`, `impressions_20250611.tsv`) as public loaders of the AIMI
release name and read it; CLIMB's `src/datasets/ct/inspect.py` for the CT path, its label
file and its 5-class rule. The exact columns of the mapping table beyond impression_id and
image_id were not confirmed. When several date stamps are present the newest is read. The CT of a study is
`CTPA/<impression_id>.nii.gz`, else `CTPA/<image_id>.nii.gz` through the mapping.

Samples: one per study: the whole CTPA (`volume.npy`) at native resolution, dtype as
stored, in RAS with its affine (as KiTS23: axis permutations/flips only). Labels: CLIMB's
5 classes, its rule verbatim: pe_positive 0 -> "No PE"; pe_acute 1 and
pe_subsegmentalonly 1 -> "Acute Subsegmental-only PE"; pe_acute 1 -> "Acute PE";
pe_subsegmentalonly 1 -> "Subsegmental-only PE"; otherwise "Chronic PE". The label
cells (PE flags, mortality, readmission, PH) are kept verbatim as text in
`source_labels` (null where the file has no such column). A study whose PE flag is
blank is filtered (no class can be given).

Split: the official splits file (valid -> val). Studies it does not list, or every
study when it is absent, get a keyed hash of the subject. Subject: the patient where the
mapping or splits file names one (person_id / patient_id / PatientID); otherwise the
study, and `medshard info` says so (the patient-level guarantee then rests on the
official split only).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from medshard.formats.nifti import open_volume, read_ras, source_orientation, volume_payload
from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import MissingRawData, Source

CLIMB_LABELS = "Final_Impressions_labels.csv"
LABEL_CELLS = ("pe_positive", "pe_acute", "pe_subsegmentalonly", "1_month_mortality",
               "6_month_mortality", "12_month_mortality", "1_month_readmission",
               "6_month_readmission", "12_month_readmission", "12_month_PH")
PATIENT_COLUMNS = ("person_id", "patient_id", "PatientID")
SPLITS = {"train": "train", "valid": "val", "val": "val", "validation": "val", "test": "test"}
TRUE = {"1", "1.0", "true", "yes"}
FALSE = {"0", "0.0", "false", "no"}
NO_PE, ACUTE_SUB, ACUTE, SUB, CHRONIC = ("No PE", "Acute Subsegmental-only PE", "Acute PE",
                                          "Subsegmental-only PE", "Chronic PE")


def flag(value: str | None) -> int | None:
    """A 0/1 label cell: 1, 0, or None when blank; anything else is a malformed cell."""
    text = (value or "").strip().lower()
    if text in TRUE:
        return 1
    if text in FALSE:
        return 0
    if text in ("", "nan", "na"):
        return None
    raise ValueError(f"label cell {value!r} is not 0/1/True/False")


def pe_class(positive: int, acute: int | None, subsegmental: int | None) -> str:
    """CLIMB's five-class rule."""
    if positive == 0:
        return NO_PE
    if acute == 1 and subsegmental == 1:
        return ACUTE_SUB
    if acute == 1:
        return ACUTE
    if subsegmental == 1:
        return SUB
    return CHRONIC


def newest(root: Path, prefix: str) -> str | None:
    """`<prefix>_<YYYYMMDD>.tsv` with the newest stamp, relative to root."""
    found = sorted(p.name for p in root.glob(f"{prefix}_*.tsv")
                   if re.fullmatch(rf"{prefix}_\d{{8}}\.tsv", p.name))
    return found[-1] if found else None


class INSPECT(Source):
    fixture = "medshard.sources.ct.inspect_ctpa_fixture:FIXTURE"
    payload_members = ("volume.npy",)
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://stanfordaimi.azurewebsites.net/datasets/318f3464-c4b6-4006-9856-6f48ba40ad67",
        steps=[
            "Sign in to Stanford AIMI, accept the Stanford University Dataset Research Use "
            "Agreement and download the INSPECT CTPA archive and its label tables.",
            "Unpack so that the folder named below holds CTPA/<impression_id>.nii.gz and the "
            "labels_*.tsv / splits_*.tsv / study_mapping_*.tsv tables (EHR files may stay).",
        ],
        layouts={"aimi tables": [FileSpec(path="splits_20250611.tsv"),
                                 FileSpec(path="labels_20250611.tsv")],
                 "climb": [FileSpec(path=CLIMB_LABELS)]},
    ))
    info: ClassVar[SourceInfo] = SourceInfo(
        name="inspect",
        title="INSPECT: a multimodal dataset for pulmonary embolism diagnosis and prognosis",
        version="2025-06-11 tables",
        modality="ct",
        tasks=["classification"],
        license=License(
            name="Stanford University Dataset Research Use Agreement",
            url="https://stanfordaimi.azurewebsites.net/datasets/318f3464-c4b6-4006-9856-6f48ba40ad67",
            terms_version="AIMI research use agreement", non_commercial=True,
        ),
        access="registration",
        homepage="https://som-shahlab.github.io/inspect-website/",
        citation=(
            "Huang SC, Huo Z, Steinberg E, et al. INSPECT: A Multimodal Dataset for Pulmonary "
            "Embolism Diagnosis and Prognosis. NeurIPS Datasets and Benchmarks (2023); "
            "arXiv:2311.10798."
        ),
        label_space=[NO_PE, ACUTE_SUB, ACUTE, SUB, CHRONIC],
        split_policy="official splits_*.tsv (train/valid/test); keyed subject hash for "
        "studies it does not list",
        split_unit="patient where the tables name one, else study",
        release_notes={"0.1.0": "first medshard adapter: RAS CTPA volumes, CLIMB's 5 classes"},
        published_counts=PublishedCounts(train=17434, test=5806, unit="studies",
                                         reference="CLIMB A.2 (first 75 % of rows as train)"),
    )

    def _labels_file(self, root: Path) -> str:
        rel = newest(root, "labels")
        if rel is None and (root / CLIMB_LABELS).is_file():
            rel = CLIMB_LABELS
        if rel is None:
            raise MissingRawData(f"inspect: no labels_<date>.tsv or {CLIMB_LABELS} in {root}; "
                                 "download INSPECT's label tables from Stanford AIMI")
        return rel

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        self._labels_file(root)

    def label_files(self, root: Path) -> list[str]:
        rels = [self._labels_file(root), newest(root, "splits"), newest(root, "study_mapping")]
        return [r for r in rels if r]

    def _table(self, root: Path, rel: str | None) -> dict[str, dict[str, str]]:
        """impression_id -> row of a side table (splits, mapping); {} when absent."""
        if rel is None:
            return {}
        with open(self.path(root, rel), newline="", encoding="utf-8") as f:
            return {row["impression_id"].strip(): row
                    for row in csv.DictReader(f, delimiter="\t") if row.get("impression_id")}

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        labels = self._labels_file(root)
        splits = self._table(root, newest(root, "splits"))
        mapping = self._table(root, newest(root, "study_mapping"))
        delimiter = "\t" if labels.endswith(".tsv") else ","
        yield from self.csv_records(root, labels,
                                    lambda row: self._record(root, row, splits, mapping),
                                    delimiter=delimiter)

    def _record(self, root: Path, row: dict[str, str], splits: dict, mapping: dict) -> RawRecord:
        impression = row["impression_id"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]+", impression):
            raise ValueError(f"impression_id {impression!r} is not an identifier")
        positive = row.get("pe_positive", row.get("pe_positive_nlp"))
        cells = {c: (row.get(c) if c != "pe_positive" else positive) for c in LABEL_CELLS}
        for c in ("pe_positive", "pe_acute", "pe_subsegmentalonly"):
            flag(cells[c])  # a malformed PE flag is a malformed row
        side = {**mapping.get(impression, {}), **splits.get(impression, {})}
        patient = next((side[c].strip() for c in PATIENT_COLUMNS if (side.get(c) or "").strip()),
                       None)
        ct = f"CTPA/{impression}.nii.gz"
        image_id = (mapping.get(impression, {}).get("image_id") or "").strip()
        by_image = f"CTPA/{image_id}.nii.gz"
        if (not (root / ct).is_file() and re.fullmatch(r"[A-Za-z0-9_-]+", image_id)
                and (root / by_image).is_file()):
            ct = by_image
        official = SPLITS.get((splits.get(impression, {}).get("split") or "").strip().lower())
        return RawRecord(
            record_id=impression,
            subject_id=patient or impression,
            files=[ct],
            split=official,
            source_labels={c: (v.strip() if v is not None else None) for c, v in cells.items()},
            size_bytes=(root / ct).stat().st_size if (root / ct).is_file() else 0,
            meta={"subject_is_patient": patient is not None},
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        return max(record.size_bytes * 3, 1)  # int16 voxels compress about 3:1 in .nii.gz

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        cells = record.source_labels
        positive = flag(cells["pe_positive"])
        if positive is None:
            raise Filtered("pe_positive is blank")
        cls = pe_class(positive, flag(cells["pe_acute"]), flag(cells["pe_subsegmentalonly"]))
        rel = record.files[0]
        path = self.path(root, rel)
        if not path.is_file():
            raise RecordError(f"missing CT {rel}; unpack INSPECT's CTPA archive")
        img = open_volume(path, rel)
        volume, affine = read_ras(img, rel)
        yield Sample(
            classes=[cls],
            source_labels=dict(cells),
            payloads={"volume": volume_payload(volume, affine, units="HU")},
            meta={"source_orientation": source_orientation(img.affine),
                  "subject_is_patient": bool(record.meta["subject_is_patient"])},
            task="classification",
        )
