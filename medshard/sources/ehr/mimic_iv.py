"""MIMIC-IV: one sample per hospital admission (EHR events), with the patient's ECGs and
chest X-rays of that admission as further roles where MIMIC-IV-ECG / MIMIC-CXR-JPG are present.

Raw layout (PhysioNet mimiciv 2.2 / 3.1; the version folder is the root):
    Tables are gzip-compressed CSVs as shipped (a decompressed `.csv` is read too), read
    by column name.
    hosp/admissions.csv.gz      subject_id, hadm_id, admittime, dischtime, deathtime,
                                admission_type, admit_provider_id, admission_location,
                                discharge_location, insurance, language, marital_status,
                                race, edregtime, edouttime, hospital_expire_flag
    hosp/patients.csv.gz        subject_id, gender, anchor_age, anchor_year,
                                anchor_year_group, dod
    hosp/labevents.csv.gz       labevent_id, subject_id, hadm_id, specimen_id, itemid,
                                charttime, storetime, value, valuenum, valueuom, ... flag,
                                priority, comments
    hosp/d_labitems.csv.gz      itemid, label, fluid, category
    hosp/prescriptions.csv.gz   subject_id, hadm_id, pharmacy_id, poe_id, starttime,
                                stoptime, drug_type, drug, gsn, ndc, prod_strength, form_rx,
                                dose_val_rx, dose_unit_rx, ..., route
    hosp/diagnoses_icd.csv.gz   subject_id, hadm_id, seq_num, icd_code, icd_version
    hosp/procedures_icd.csv.gz  subject_id, hadm_id, seq_num, [chartdate,] icd_code,
                                icd_version
    hosp/d_icd_diagnoses.csv.gz, hosp/d_icd_procedures.csv.gz   icd_code, icd_version,
                                long_title
    icu/icustays.csv.gz         subject_id, hadm_id, stay_id, first_careunit,
                                last_careunit, intime, outtime, los
    icu/chartevents.csv.gz      subject_id, hadm_id, stay_id, [caregiver_id,] charttime,
                                [storetime,] itemid, value, valuenum, valueuom, [warning]
    icu/d_items.csv.gz          itemid, label, abbreviation, linksto, category, ...
  Optional, linked by subject_id (same shifted timeline as MIMIC-IV), under the same root:
    mimic-iv-ecg/record_list.csv   subject_id, study_id, file_name, ecg_time, path
                                   (path: files/p<first 4 digits>/p<subject>/s<study>/<study>,
                                   a WFDB record: .hea + format-16 .dat, 12 leads, 500 Hz)
    mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz   dicom_id, subject_id, study_id,
                                   ViewPosition, StudyDate, StudyTime, ...; images at
                                   files/p<first 2 digits>/p<subject>/s<study>/<dicom_id>.jpg
  Only hosp/admissions and hosp/patients are required; each other table is read when
  present. Nothing outside the root is read (the two linked releases are subfolders).

Sources: MIMIC-IV documentation (mimic.mit.edu, hosp/icu module pages) for the tables and
columns, checked against mimic-explorer's synthetic tables in the same layout; the
MIMIC-IV-ECG project page and public loaders for record_list.csv (columns above) and the
p<4 digits> folders; MIMIC-CXR-JPG as in `medshard.sources.cxr.mimic_cxr`. CLIMB code
`src/datasets/multimodal/mimic_iv.py` for CLIMB's task (read, not copied).

Task (CLIMB's "48 Hour In-Hospital-Mortality", Yes/No): `Yes` when the patient died in
hospital within 48 h of admittime: deathtime - admittime < 48 h (deathtime, or dischtime
when hospital_expire_flag is 1 and deathtime is blank). CLIMB's code computes the same
comparison but stores it inverted (`48_ihm` = 0 for a death within two days); medshard
names the class by its meaning. Length of stay (regression, CLIMB's code: dischtime -
admittime in days) is `meta.los_days`.

Label leakage, and what is done about it. CLIMB's code gives the model every event of the
whole admission, the admission's ICD diagnoses among them, and attaches all of a patient's
ECGs and X-rays whatever their date: events after hour 48 tell the model the patient was
alive at hour 48. Here the input is cut at the prediction window: option `input_hours`
(default 48) keeps only events with offset < input_hours (events before admission, e.g.
ED labs linked to the admission, are kept; their offsets are negative), and only ECGs /
X-rays taken inside [admittime, min(dischtime, admittime + input_hours)) are attached.
The window is in `meta.input_hours`. ICD diagnoses and procedures carry no time in MIMIC
(they are billed from the discharge record), so they are never input events: they are
`source_labels.diagnoses` / `.procedures` (targets, e.g. for diagnosis prediction, which is
what CLIMB's code used them as). What a 48-h window cannot hide: an admission ending before
hour 48 has no events after its end; that is part of CLIMB's task definition, said here.

EHR payload (role `ehr`, kind events, JSON Lines): one line per event with `time` (hours
from admittime), `code` (`lab:<itemid>`, `chart:<itemid>`, `ndc:<ndc>` or `drug:<name>`
when the NDC is blank/0, `icu:in` / `icu:out`), `kind` (lab | chart | medication | icu),
`name` (d_labitems / d_items label, drug name, care unit), `value` (valuenum; a
prescription's dose_val_rx when numeric), `text` (the raw value; a prescription's route)
and `unit` (valueuom; dose_unit_rx). Rows without a parseable time are not placed in time:
they are counted in `meta.events_without_time`. Lab comments (free text) are not kept. An
admission with no event in the window is filtered, counted ("no EHR event in the input
window"): its EHR payload would be empty (CLIMB's code likewise skips admissions it has
nothing for).

Multimodal roles: `ecg_0` ... (signal, the ECG standard: 500 Hz, 10 s, 12 leads) and
`cxr_0` ... (the JPEG as shipped), in time order, at most `max_ecgs` / `max_cxrs` (those
in the window beyond that are counted in meta). `meta.ecgs` / `meta.cxrs` list each
attached study with its role and offset in hours. An attached ECG or image that cannot be
read quarantines the admission (nothing is dropped silently).

Dates never leave the source: events, attachments, LOS and death are offsets from
admittime; age is `anchor_age` + (admission year - anchor_year), the MIMIC-documented
age at admission, capped as MIMIC caps it (anchor_age 91 = over 89); anchor_year,
anchor_year_group, dod and every timestamp stay in the raw tables. The ECG header's
base date and the CXR StudyDate are not read into any output.

Split: no official split; keyed hash of subject_id (all of a patient's admissions in one
split). CLIMB's code splits sorted hadm_ids 80/20, which puts one patient's admissions in
both; not followed.

Link times, and what is unconfirmed. An ECG's time is record_list.csv's ecg_time; the
MIMIC-IV-ECG project notes that the carts' clocks were not always synchronized with the
hospital's systems, so an ECG near a window edge may fall on the wrong side of it. An
X-ray's time is its StudyDate + StudyTime; that MIMIC-CXR's shifted dates share each
patient's MIMIC-IV shift is what MIMIC's documentation of the linkage says, not something
this adapter can check. ECGs taken in the ED before admittime are not attached (the window
starts at admittime).

Event tables are read through a per-process store partitioned by hadm_id
(`medshard.sources.ehr.mimic_iv_events`): listing reads only admissions, patients and the
linked releases' index tables; each admission then costs one indexed look-up. Measured
(benchmarks/README.md): peak RSS flat at ~74 MiB over the imports from 250k to 4M
labevents rows (pandas reading the 4M-row table: 994 MiB); the cost that grows is
temporary disk (~72 B per event row) and one pass per worker process, at ~30k rows/s on
one shared core: labevents (~120M rows) is ~1 h and ~8.5 GB, chartevents (~430M rows) is
hours and ~30 GB, which is why `chartevents=false` exists.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from medshard.formats.wfdb import read_record
from medshard.schemas import (
    BadRow,
    Filtered,
    License,
    Payload,
    RawRecord,
    RecordError,
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
from medshard.sources.ehr.mimic_iv_events import TableError, cached_event_store, parse_time

SLUG = "mimic-iv"
ECG_DIR = "mimic-iv-ecg"
CXR_DIR = "mimic-cxr-jpg"
CXR_METADATA = f"{CXR_DIR}/mimic-cxr-2.0.0-metadata.csv"
MAX_ATTACHED = 4
TABLES = {
    "admissions": "hosp/admissions", "patients": "hosp/patients",
    "labevents": "hosp/labevents", "d_labitems": "hosp/d_labitems",
    "prescriptions": "hosp/prescriptions", "diagnoses_icd": "hosp/diagnoses_icd",
    "d_icd_diagnoses": "hosp/d_icd_diagnoses", "procedures_icd": "hosp/procedures_icd",
    "d_icd_procedures": "hosp/d_icd_procedures", "icustays": "icu/icustays",
    "chartevents": "icu/chartevents", "d_items": "icu/d_items",
}


class MIMICIVOptions(SourceOptions):
    input_hours: float = Field(
        48.0, gt=0, le=8760, description="the input window: only events with an offset from "
        "admittime below this many hours, and only ECGs / X-rays taken before it, enter the "
        "sample (48: CLIMB's 48-h mortality window; no later event leaks the outcome)",
    )
    chartevents: bool = Field(
        True, description="read icu/chartevents (ICU vitals and charted values; ~430M rows "
        "in 3.1, the longest pass and most of the temporary store); false leaves them out",
    )
    max_ecgs: int = Field(2, ge=0, le=MAX_ATTACHED, description="ECG roles per admission "
                          "(ecg_0...), the first in time; more are counted in meta")
    max_cxrs: int = Field(2, ge=0, le=MAX_ATTACHED, description="chest X-ray roles per "
                          "admission (cxr_0...), the first in time; more are counted in meta")


def _int(text: str | None, what: str) -> int:
    text = (text or "").strip()
    if not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a numeric id")
    return int(text)


def _time(text: str | None, what: str) -> float:
    t = parse_time(text)
    if t is None:
        raise ValueError(f"{what} is not a timestamp")  # the value itself is a date: not shown
    return t


def _opt(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?")


def _scrub_dates(text: str) -> str:
    """A reader's error message without the dates and times it may quote (a WFDB header's
    record line carries the ECG's base date and time)."""
    return _DATE_LIKE.sub("<date>", text)[:300]


def _cxr_time(date: str | None, time: str | None) -> float | None:
    """StudyDate (YYYYMMDD) + StudyTime (HHMMSS[.ffff]) in parse_time's seconds."""
    date, time = (date or "").strip(), (time or "").strip().split(".")[0].zfill(6)
    if len(date) != 8 or not date.isdigit() or not time.isdigit():
        return None
    return parse_time(f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}:{time[4:6]}")


class MIMICIV(Source):
    Options = MIMICIVOptions
    fixture = "medshard.sources.ehr.mimic_iv_fixture:FIXTURE"
    payload_members = ("ehr.jsonl", *(f"ecg_{i}.npy" for i in range(MAX_ATTACHED)),
                       *(f"cxr_{i}.jpg" for i in range(MAX_ATTACHED)))
    demographic_fields: ClassVar[dict[str, str]] = {"age_years": "age_years"}
    info: ClassVar[SourceInfo] = SourceInfo(
        name=SLUG,
        title="MIMIC-IV: hospital admissions as EHR event sequences, with linked ECGs and "
        "chest X-rays",
        version="3.1",
        modality="ehr",
        tasks=["binary classification", "regression"],
        license=License(
            name="PhysioNet Credentialed Health Data License 1.5.0",
            url="https://physionet.org/content/mimiciv/view-license/3.1/",
            terms_version="1.5.0",
            credentialed=True,
        ),
        access="credentialed",
        homepage="https://physionet.org/content/mimiciv/3.1/",
        citation=(
            "Johnson AEW, Bulgarelli L, Shen L, et al. MIMIC-IV, a freely accessible "
            "electronic health record dataset. Scientific Data 10, 1 (2023). PhysioNet, "
            "https://doi.org/10.13026/kpb9-mt58"
        ),
        label_space=["Yes", "No"],
        split_policy="keyed hash of subject_id (no official split; every admission of a "
        "patient in one split)",
        split_unit="patient",
        release_notes={"0.1.0": "first medshard adapter: MIMIC-IV 2.2/3.1 hosp+icu, with "
                       "MIMIC-IV-ECG and MIMIC-CXR-JPG linked by subject and time"},
        published_counts=PublishedCounts(
            train=640000, test=160000, unit="admissions",
            reference="CLIMB A.2 (fusion subset with ECG and X-ray: 166,215 / 41,554); "
            "CLIMB's code splits hadm_ids 80/20 and attaches every ECG/X-ray of the patient, "
            "so its counts are not this adapter's (subject split, window-bounded links)",
        ),
    )
    download: ClassVar[DownloadSpec | None] = DownloadSpec(
        provider="physionet", project="mimiciv", version="3.1"
    )

    # --- files -----------------------------------------------------------------------
    def _find(self, root: Path, stem: str) -> str | None:
        for rel in (f"{stem}.csv.gz", f"{stem}.csv"):
            if (root / rel).is_file():
                return rel
        return None

    def _tables(self, root: Path) -> dict[str, str]:
        skip = () if self._options["chartevents"] else ("chartevents", "d_items")
        return {name: rel for name, stem in TABLES.items()
                if name not in skip and (rel := self._find(root, stem)) is not None}

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        for name in ("admissions", "patients"):
            if self._find(root, TABLES[name]) is None:
                raise MissingRawData(
                    f"{SLUG}: {TABLES[name]}.csv.gz not found in {root}; the data root must "
                    "be the MIMIC-IV version folder (it holds hosp/ and icu/)")

    def label_files(self, root: Path) -> list[str]:
        # every table the samples are read from: a changed table rebuilds the source
        return sorted(self._tables(root).values())

    @contextmanager
    def _open(self, root: Path, rel: str) -> Iterator[io.TextIOBase]:
        path = self.path(root, rel)
        if rel.endswith(".gz"):
            with gzip.open(path, "rt", newline="", encoding="utf-8", errors="strict") as f:
                yield f
        else:
            with open(path, newline="", encoding="utf-8", errors="strict") as f:
                yield f

    def _rows(self, root: Path, rel: str, bad: list[BadRow] | None = None
              ) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, row) of a table; a file that stops decoding ends it with a BadRow."""
        with self._open(root, rel) as f:
            reader = csv.DictReader(f)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeError, EOFError, gzip.BadGzipFile) as exc:
                    if bad is None:
                        raise RecordError(f"{rel} is unreadable: {row_error_reason(exc)}"
                                          ) from None
                    bad.append(BadRow(rel, reader.line_num + 1, row_error_reason(exc),
                                      type(exc).__name__))
                    return
                yield reader.line_num, row

    # --- listing ---------------------------------------------------------------------
    def _linked(self, root: Path, bad: list[BadRow]) -> tuple[dict, dict]:
        """subject -> time-sorted [(time, study, record path)] of MIMIC-IV-ECG and
        [(time, study, dicom_id, view)] of MIMIC-CXR-JPG (small tuples: ~800k ECGs)."""
        ecgs: dict[int, list] = {}
        rel = f"{ECG_DIR}/record_list.csv"
        if (root / rel).is_file():
            for line, r in self._rows(root, rel, bad):
                try:
                    subject, study = _int(r["subject_id"], "subject_id"), _int(
                        r["study_id"], "study_id")
                    t = _time(r["ecg_time"], "ecg_time")
                    base = f"{ECG_DIR}/{r['path'].strip()}"
                    if not base.startswith(f"{ECG_DIR}/files/"):
                        raise ValueError("path is not under files/")
                except ROW_ERRORS as exc:
                    bad.append(BadRow(rel, line, row_error_reason(exc), type(exc).__name__))
                    continue
                ecgs.setdefault(subject, []).append((t, study, base))
        cxrs: dict[int, list] = {}
        rel = self._find(root, CXR_METADATA[:-4]) or ""
        if rel:
            for line, r in self._rows(root, rel, bad):
                try:
                    subject, study = _int(r["subject_id"], "subject_id"), _int(
                        r["study_id"], "study_id")
                    dicom = r["dicom_id"].strip()
                    if not dicom or not all(c.isalnum() or c == "-" for c in dicom):
                        raise ValueError(f"dicom_id {dicom!r} is not an image id")
                    t = _cxr_time(r.get("StudyDate"), r.get("StudyTime"))
                    if t is None:
                        raise ValueError("StudyDate/StudyTime is not a date and time")
                except ROW_ERRORS as exc:
                    bad.append(BadRow(rel, line, row_error_reason(exc), type(exc).__name__))
                    continue
                cxrs.setdefault(subject, []).append(
                    (t, study, dicom, _opt(r.get("ViewPosition"))))
        for d in (ecgs, cxrs):
            for items in d.values():
                items.sort(key=lambda x: (x[0], x[1], x[2]))
        return ecgs, cxrs

    @staticmethod
    def _attachment(kind: str, subject: int, item: tuple) -> tuple[list[str], dict[str, Any]]:
        """(files, meta entry without role/offset) of one linked ECG or X-ray."""
        if kind == "ecg":
            _, study, base = item
            return [f"{base}.hea", f"{base}.dat"], {"study_id": str(study)}
        _, study, dicom, view = item
        s = str(subject)
        return ([f"{CXR_DIR}/files/p{s[:2]}/p{s}/s{study}/{dicom}.jpg"],
                {"study_id": str(study), "dicom_id": dicom, "view_position": view})

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        """One record per admissions row; the linked ECGs / X-rays of its window joined."""
        self.check_root(root)
        bad: list[BadRow] = []
        patients: dict[int, tuple[str | None, int | None, int | None]] = {}
        prel = self._find(root, TABLES["patients"]) or ""
        for line, r in self._rows(root, prel, bad):
            try:
                age = (r.get("anchor_age") or "").strip()
                year = (r.get("anchor_year") or "").strip()
                patients[_int(r["subject_id"], "subject_id")] = (
                    _opt(r.get("gender")), int(age) if age else None,
                    int(year) if year else None)
            except ROW_ERRORS as exc:
                bad.append(BadRow(prel, line, row_error_reason(exc), type(exc).__name__))
        ecgs, cxrs = self._linked(root, bad)
        yield from bad
        bad.clear()
        arel = self._find(root, TABLES["admissions"]) or ""
        for line, r in self._rows(root, arel, bad):
            try:
                yield self._record(r, patients, ecgs, cxrs)
            except ROW_ERRORS as exc:
                yield BadRow(arel, line, row_error_reason(exc), type(exc).__name__)
        yield from bad

    def _record(self, r: dict[str, str], patients: dict, ecgs: dict, cxrs: dict) -> RawRecord:
        subject, hadm = _int(r["subject_id"], "subject_id"), _int(r["hadm_id"], "hadm_id")
        admit = _time(r["admittime"], "admittime")
        disch = _time(r["dischtime"], "dischtime")
        if disch < admit:
            raise ValueError("dischtime is before admittime")
        flag = (r.get("hospital_expire_flag") or "").strip()
        if flag not in ("0", "1"):
            raise ValueError(f"hospital_expire_flag {flag!r} is not 0 or 1")
        death = parse_time(r.get("deathtime"))
        if death is None and flag == "1":
            death = disch  # died in hospital, deathtime blank: the discharge is the death
        death_h = None if death is None else (death - admit) / 3600.0
        window = float(self._options["input_hours"])
        end = min(disch, admit + window * 3600.0)
        files: list[str] = []
        attached: dict[str, list[dict[str, Any]]] = {}
        in_window: dict[str, int] = {}
        for kind, linked, cap in (("ecg", ecgs, self._options["max_ecgs"]),
                                  ("cxr", cxrs, self._options["max_cxrs"])):
            inside = [x for x in linked.get(subject, []) if admit <= x[0] < end]
            in_window[kind] = len(inside)
            attached[kind] = []
            for i, item in enumerate(inside[:cap]):
                fs, info = self._attachment(kind, subject, item)
                files.extend(fs)
                t = item[0]
                attached[kind].append({"role": f"{kind}_{i}", **info,
                                       "offset_hours": round((t - admit) / 3600.0, 4)})
        sex, anchor_age, anchor_year = patients.get(subject, (None, None, None))
        age = None
        if anchor_age is not None and anchor_year is not None:
            admit_year = int(r["admittime"].strip()[:4])
            age = anchor_age + admit_year - anchor_year
        died_48h = death_h is not None and death_h < 48.0
        return RawRecord(
            record_id=str(hadm),
            subject_id=str(subject),
            files=files,
            source_labels={
                "hospital_expire_flag": flag,
                "death_within_48h": died_48h,
                "death_offset_hours": None if death_h is None else round(death_h, 4),
            },
            size_bytes=0,
            meta={
                "hadm_id": str(hadm),
                "age_years": age,
                "sex": sex,
                "admission_type": _opt(r.get("admission_type")),
                "admission_location": _opt(r.get("admission_location")),
                "insurance": _opt(r.get("insurance")),
                "language": _opt(r.get("language")),
                "marital_status": _opt(r.get("marital_status")),
                "race": _opt(r.get("race")),
                "los_days": round((disch - admit) / 86400.0, 6),
                "input_hours": window,
                "ecgs": attached["ecg"],
                "cxrs": attached["cxr"],
                "ecgs_in_window": in_window["ecg"],
                "cxrs_in_window": in_window["cxr"],
            },
        )

    # --- loading ---------------------------------------------------------------------
    def _store(self, root: Path):
        tables = self._tables(root)
        key = (str(root), tuple(sorted(
            (rel, (root / rel).stat().st_size, getattr((root / rel).stat(), "st_mtime_ns", 0))
            for rel in tables.values())))
        return cached_event_store(key, lambda rel: self._open(root, rel), tables)

    def _events(self, rows: list[tuple]) -> tuple[dict[str, Any], int]:
        window = float(self._options["input_hours"])
        kept = [r for r in rows if r[0] is not None and r[0] < window]
        undated = sum(1 for r in rows if r[0] is None)
        cols: dict[str, Any] = {
            "time": np.asarray([r[0] for r in kept], dtype=np.float64),
            "value": np.asarray([np.nan if r[4] is None else r[4] for r in kept],
                                dtype=np.float64),
        }
        for i, name in ((1, "code"), (2, "kind"), (3, "name"), (5, "text"), (6, "unit")):
            cols[name] = [r[i] for r in kept]
        return cols, undated

    def _ecg(self, root: Path, files: list[str]) -> Payload:
        try:
            header = self.path(root, files[0])
            signal, fields = read_record(header.with_suffix(""),
                                         resolve=lambda p: self.path(root, p))
        except FileNotFoundError as exc:
            raise RecordError(f"missing ECG file {Path(exc.filename or files[0]).name}"
                              ) from None
        except RecordError:
            raise
        except Exception as exc:  # wfdb's fallback raises many types for broken records
            raise RecordError(f"unreadable ECG record {Path(files[0]).name}: "
                              f"{_scrub_dates(str(exc))}") from None
        units = sorted(set(fields["units"]))
        if len(units) != 1:
            raise RecordError(f"ECG {Path(files[0]).name}: mixed units across leads {units}")
        return Payload("signal", signal.T, {
            "sampling_rate_hz": float(fields["fs"]), "channels": list(fields["sig_name"]),
            "units": units[0], "standard": "ecg"})

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        try:
            store = self._store(root)
        except TableError as exc:
            raise RecordError(str(exc)) from None
        hadm = int(record.record_id)
        events, undated = self._events(store.events(hadm))
        codes = store.codes(hadm)
        payloads: dict[str, Payload] = {"ehr": Payload("events", events, {
            "time_unit": "h", "time_origin": "admission (admittime)"})}
        pos = 0
        for ecg in record.meta["ecgs"]:
            payloads[ecg["role"]] = self._ecg(root, record.files[pos:pos + 2])
            pos += 2
        for cxr in record.meta["cxrs"]:
            data = self.read_bytes(root, record.files[pos], "chest X-ray")
            pos += 1
            payloads[cxr["role"]] = Payload("image", data, {
                "view": cxr["view_position"], "source_encoding": "jpeg", "bit_depth": 8})
        if not len(events["time"]):  # after the attachments: a broken file is quarantined
            raise Filtered("no EHR event in the input window")
        labels = dict(record.source_labels)
        for kind, key in (("diagnosis", "diagnoses"), ("procedure", "procedures")):
            labels[key] = [{"seq_num": seq, "icd_code": code, "icd_version": version,
                            "title": title}
                           for k, seq, code, version, title in codes if k == kind]
        meta = {**record.meta, "events_without_time": undated,
                "n_events": int(events["time"].shape[0])}
        yield Sample(
            classes=["Yes" if labels["death_within_48h"] else "No"],
            source_labels=labels,
            payloads=payloads,
            meta=meta,
            task="binary classification",
        )

    def estimate_output_bytes(self, record: RawRecord) -> int:
        # events of a 48-h window (~2k lines x ~120 B) + 12 x 5000 float32 per ECG + JPEGs
        return 250_000 + 240_000 * len(record.meta["ecgs"]) + 2_000_000 * len(
            record.meta["cxrs"])
