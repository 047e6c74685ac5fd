"""CMMD: the Chinese Mammography Database, biopsy-confirmed benign or malignant breasts.

Raw layout (TCIA, https://www.cancerimagingarchive.net/collection/cmmd/):
    CMMD_clinicaldata_revision.xlsx   one row per breast with a lesion (1,872 rows, 1,775
        patients): ID1 (D1-0001 ...; D2-... for the patients with molecular subtypes),
        LeftRight (L|R), Age, number, abnormality (calcification | mass | both),
        classification (Benign | Malignant), subtype (Luminal A | Luminal B |
        HER2-enriched | triple negative, D2 patients only)
    CMMD/<ID1>/<study folder>/<series folder>/1-1.dcm, 1-2.dcm, ...   (NBIA Data Retriever;
        `medshard download` writes <ID1>/<Study UID>/<Series UID>/ instead, also read)

Sources: the collection page (DOI 10.7937/tcia.eqde-4b16); CLIMB reads the table's `ID1`
and `classification` and the patient folders (`DDVD233/CLIMB:src/datasets/mammo/cmmd.py`);
the other columns and row counts from a third-party audit (../shared/SOURCES.md). Which
header attribute names the view in CMMD's files (ViewPosition or ViewCodeSequence) is
unconfirmed: both are read.
The images of a patient are not named by breast or view: each file's header says
(ImageLaterality or Laterality; ViewPosition, or the ViewCodeSequence code for CC / MLO,
`medshard.formats.dicom.read_view_laterality`), read while listing (headers only). The
table's rows join the images by ID1 and laterality; the rows name no view.

Sample: one breast, `<ID1>_<L|R>`, its CC and MLO images as roles `cc` and `mlo`
(`medshard.sources.mammo.views`); a breast without both is filtered, one whose images
are missing or unreadable is quarantined. A file whose header cannot be read cannot say
its breast, so it quarantines every breast of its patient (with the file's reason). Labels: `classification` verbatim ("Benign" /
"Malignant", biopsy-confirmed; not mapped to BI-RADS, `docs/vocabulary.md`).
`source_labels` keeps classification, subtype, abnormality and number. CLIMB lists CMMD
but leaves it out of its experiments pending label verification. Age comes from the
table (whole years, 90 and above reported as 90).

Split: CMMD has no official split. CLIMB takes the first 75 % of the table's rows as
train, which splits by row order, not by patient. Here the split is a keyed hash of the
patient (ID1, key "medshard-split:cmmd"): `test_fraction` of the patients (default 0.25,
CLIMB's share) to test, then `val_fraction` of the rest to val; both breasts of a
patient stay together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from medshard.formats.dicom import AGE_CAP_YEARS, read_view_laterality
from medshard.schemas import BadRow, License, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.sources.base import DicomImageOptions, MissingRawData, Source
from medshard.sources.mammo.views import ROLES, VIEW_ROLES, breast_meta, require_views, view_payload
from medshard.sources.splits import hash_split

SLUG = "cmmd"
LABELS: tuple[str, ...] = ("Benign", "Malignant")
TABLE = "CMMD_clinicaldata_revision.xlsx"
COLUMNS = ("ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype")
TREE = "CMMD"
_PATIENT = re.compile(r"^D[12]-\d{4}$")


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the clinical table, checked (ValueError/KeyError when malformed)."""
    patient = _text(row["ID1"]) or ""
    if not _PATIENT.match(patient):
        raise ValueError(f"ID1 {patient!r} is not a CMMD patient id (D1-NNNN or D2-NNNN)")
    side = (_text(row["LeftRight"]) or "").upper()
    if side not in ("L", "R"):
        raise ValueError(f"LeftRight {row['LeftRight']!r} is not L or R")
    label = _text(row["classification"])
    if label not in LABELS:
        raise ValueError(f"classification {label!r} is not Benign or Malignant")
    age = row.get("Age")
    number = row.get("number")
    return {
        "patient": patient, "side": side, "classification": label,
        "age": None if age in (None, "") else float(min(int(float(age)), AGE_CAP_YEARS)),
        "number": None if number in (None, "") else int(float(number)),
        "abnormality": _text(row.get("abnormality")),
        "subtype": _text(row.get("subtype")),
    }


class CMMDOptions(DicomImageOptions):
    test_fraction: float = Field(
        0.25, ge=0.0, lt=1.0, description="share of the patients in test, by keyed patient hash "
        "(CMMD has no official split; 0.25 is CLIMB's share)",
    )
    val_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of the other patients in val, by the same hash"
    )


class CMMD(Source):
    Options = CMMDOptions
    fixture = "medshard.sources.mammo.cmmd_fixture:FIXTURE"
    payload_members = ("cc.png", "mlo.png")
    required_files = (TABLE,)
    root_hint = "put the clinical table and the NBIA download's CMMD/ folder there"
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="The Chinese Mammography Database (CMMD)",
        version="TCIA 2021 (clinical data revision)",
        modality="mammography",
        tasks=["classification"],
        license=License(
            name="Creative Commons Attribution 4.0 International", spdx="CC-BY-4.0",
            url="https://creativecommons.org/licenses/by/4.0/", terms_version="4.0",
        ),
        access="open",
        homepage="https://www.cancerimagingarchive.net/collection/cmmd/",
        citation=(
            "Cui C, Li L, Cai H, Fan Z, Zhang L, Dan T, Li J, Wang J. The Chinese Mammography "
            "Database (CMMD): An online mammography database with biopsy confirmed types for "
            "machine diagnosis of breast. The Cancer Imaging Archive (2021), "
            "https://doi.org/10.7937/tcia.eqde-4b16"
        ),
        label_space=list(LABELS),
        split_policy=(
            "no official split: keyed hash of the patient (test_fraction 0.25, then "
            "val_fraction 0.1 of the rest); CLIMB's first-75%-of-rows split is not used"
        ),
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter: one sample per breast, CC and MLO"},
        published_counts=PublishedCounts(
            train=1404, test=468, unit="breasts (rows of the clinical table); CLIMB splits by "
            "row order, medshard by patient hash, so the split sizes differ",
            reference="CLIMB Table 7 / A.2",
        ),
    )

    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://www.cancerimagingarchive.net/collection/cmmd/",
        steps=[
            "On the collection page, download CMMD_clinicaldata_revision.xlsx into the source "
            "folder.",
            "Download the images (.tcia manifest) with the NBIA Data Retriever into the same "
            "folder, keeping its CMMD/ tree.",
        ],
    ), approx_bytes=18_000_000_000)

    def _table(self, root: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        """(spreadsheet row number, {column: value}) of the first sheet."""
        import openpyxl  # the etl extra; only CMMD needs it

        try:
            with open(self.path(root, TABLE), "rb") as f:
                book = openpyxl.load_workbook(f, read_only=True, data_only=True)
                rows = book.worksheets[0].iter_rows(values_only=True)
                header = [_text(c) for c in next(rows, ())]
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    raise MissingRawData(f"{SLUG}: {TABLE} lacks the columns {missing}; "
                                         "re-download the clinical table from TCIA")
                for number, values in enumerate(rows, start=2):
                    if any(v not in (None, "") for v in values):
                        yield number, dict(zip(header, values, strict=False))
                book.close()
        except MissingRawData:
            raise
        except Exception as exc:  # zip / XML errors: not a workbook
            raise MissingRawData(f"{SLUG}: {TABLE} is not a readable .xlsx workbook "
                                 f"({type(exc).__name__}); re-download it from TCIA") from None

    def _patient_files(self, root: Path, patient: str) -> list[str]:
        for folder in (f"{TREE}/{patient}", patient):
            if (root / folder).is_dir():
                return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                              if p.suffix.lower() == ".dcm" and (p.is_file() or p.is_symlink()))
        return []

    def _split(self, patient: str) -> str:
        test, val = float(self._options["test_fraction"]), float(self._options["val_fraction"])
        return hash_split(SLUG, patient, {"train": (1 - test) * (1 - val),
                                          "val": (1 - test) * val, "test": test})

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per row of the clinical table (a breast); reads the table and the
        headers of the patient's DICOM files (laterality, view), no pixels."""
        self.check_root(root)
        headers: dict[str, dict[str, tuple[str | None, str | None]]] = {}
        seen: set[str] = set()
        for number, row in self._table(root):
            try:
                r = parse_row(row)
            except (ValueError, KeyError, TypeError) as exc:
                yield BadRow(TABLE, number, f"{type(exc).__name__}: {exc}"[:300],
                             type(exc).__name__)
                continue
            record_id = f"{r['patient']}_{r['side']}"
            if record_id in seen:
                yield BadRow(TABLE, number, f"breast {record_id} has a second row")
                continue
            seen.add(record_id)
            if r["patient"] not in headers:
                found = {}
                for rel in self._patient_files(root, r["patient"]):
                    try:
                        found[rel] = read_view_laterality(self.path(root, rel))
                    except RecordError:
                        found[rel] = (None, None)  # unreadable or outside: load() says why
                headers[r["patient"]] = found
            files = headers[r["patient"]]
            mine = [rel for rel, (_, side) in files.items() if side == r["side"]]
            unknown = [rel for rel, (_, side) in files.items() if side is None]
            views = [{"role": VIEW_ROLES.get(files[rel][0] or ""), "file": rel} for rel in mine]
            views.sort(key=lambda v: (ROLES.index(v["role"]) if v["role"] else 9, v["file"]))
            yield RawRecord(
                record_id=record_id,
                subject_id=r["patient"],
                files=[v["file"] for v in views] + unknown,
                source_labels={"classification": r["classification"], "subtype": r["subtype"],
                               "abnormality": r["abnormality"], "number": r["number"]},
                split=self._split(r["patient"]),  # type: ignore[arg-type]
                size_bytes=sum((root / v["file"]).stat().st_size for v in views),
                meta={"laterality": r["side"], "age": r["age"], "views": views,
                      "unread": unknown},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        for rel in record.meta["unread"]:  # a file whose header could not say its breast
            read_view_laterality(self.path(root, rel))  # raises with the reason
        views = record.meta["views"]
        if not views:
            raise RecordError(f"no image of the {record.meta['laterality']} breast in the "
                              "patient's folder (CMMD/<ID1>/...); download the patient's series")
        unnamed = [v for v in views if v["role"] is None]
        if unnamed:
            raise RecordError(f"{Path(unnamed[0]['file']).name}: neither ViewPosition nor a "
                              "CC/MLO ViewCodeSequence code")
        require_views([v["role"] for v in views])
        side = record.meta["laterality"]
        payloads, view_meta = {}, {}
        for v in views:
            payloads[v["role"]], view_meta[v["role"]] = view_payload(
                self.path(root, v["file"]), v["role"].upper(), side,
                monochrome1=self._options["monochrome1"], burned_in=self._options["burned_in"])
        meta = breast_meta(view_meta)
        meta["age"] = record.meta["age"] if record.meta["age"] is not None else meta["age"]
        yield Sample(
            classes=[record.source_labels["classification"]],
            source_labels=record.source_labels,
            payloads=payloads,
            meta={**meta, "laterality": side},
            task="classification",
        )
