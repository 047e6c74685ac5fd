"""A miniature MIMIC-IV (hosp + icu) with linked MIMIC-IV-ECG and MIMIC-CXR-JPG, in the
real layout. Declared synthetic: no real patient is in it.

Real: the column layout and the rows of mimic-explorer 0.1.4's synthetic MIMIC-IV test
tables (`medshard.testing.realdata`, `mimic-iv-test-*`), written gzip-compressed under
hosp/ and icu/ as PhysioNet ships them; the ECG waveform (pydicom's real 12-lead
`waveform_ecg.dcm`, resampled to MIMIC-IV-ECG's 500 Hz and written as WFDB format 16); the
radiograph pixels (pydicom-data's `RG1_UNCR.dcm`, as the MIMIC-CXR fixture makes them).
Illustrative (added here): admission 20013 (a death 36 h after admission), a lab after
hour 48 and an undated lab of admission 20001, the ECG and X-ray index rows (ids, times),
one ECG with a truncated signal file (admission 20008: quarantined), an admissions row
whose admittime is no timestamp (a bad row).

The cases: admission 20001 has an ECG (hour 2.5) and an X-ray (hour 5.25) inside its
window -> one sample with three roles (ehr, ecg_0, cxr_0); the same patient's ECG at hour
97 (inside the stay, after the 48-h window), ECG between admissions and X-ray after the
second admission's discharge are attached to nothing. Dates planted as PHI markers: none
may appear in any output byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path

import numpy as np

from medshard.testing import realdata

HOSP = ["admissions", "patients", "labevents", "d_labitems", "prescriptions", "diagnoses_icd",
        "d_icd_diagnoses", "procedures_icd", "d_icd_procedures"]
ICU = ["icustays", "chartevents", "d_items"]
# MIMIC-IV-ECG lead order (its .hea files)
MIMIC_LEADS = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
# (subject, study, ecg_time, truncated)
ECGS = [
    (10001, 40000001, "2150-03-15 10:30:00", False),  # admission 20001, hour 2.5: attached
    (10001, 40000002, "2150-03-19 09:00:00", False),  # 20001, hour 97: after the window
    (10001, 40000003, "2150-06-01 09:00:00", False),  # between admissions: nothing
    (10006, 40000004, "2145-12-02 08:00:00", True),   # 20008, hour 12: truncated .dat
    (10011, 40000005, "2190-02-01 12:00:00", False),  # 20013, hour 2: attached
]
# (subject, study, dicom_id, StudyDate, StudyTime, view)
CXRS = [
    (10001, 50000001, "0b1c2d3e-4f5a6b7c-8d9e0f1a-2b3c4d5e-6f7a8b9c", "21500315", "131500.000",
     "AP"),  # admission 20001, hour 5.25: attached
    (10001, 50000002, "1a2b3c4d-5e6f7a8b-9c0d1e2f-3a4b5c6d-7e8f9a0b", "21500920", "100000.000",
     "PA"),  # after admission 20002's discharge: nothing
    (10003, 50000003, "2c3d4e5f-6a7b8c9d-0e1f2a3b-4c5d6e7f-8a9b0c1d", "21800611", "100000.000",
     "PA"),  # admission 20005, hour 25: attached
]
BROKEN_ADMISSION = "20008"


def _read(key: str) -> tuple[list[str], list[list[str]]]:
    with open(realdata.get(key), newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_table(path: Path, header: list[str], rows: list[list]) -> None:
    """A CSV, gzip-compressed without a timestamp (same bytes on every run)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as gz:
        gz.write(buf.getvalue().encode())


def _row(header: list[str], **values: object) -> list[str]:
    return ["" if values.get(c) is None else str(values[c]) for c in header]


def _extra_rows(name: str, header: list[str]) -> list[list[str]]:
    if name == "admissions":
        return [
            _row(header, subject_id=10011, hadm_id=20013, admittime="2190-02-01 10:00:00",
                 dischtime="2190-02-02 22:00:00", deathtime="2190-02-02 22:00:00",
                 admission_type="EW EMER.", admission_location="EMERGENCY ROOM",
                 discharge_location="DIED", insurance="Medicare", language="ENGLISH",
                 race="WHITE", hospital_expire_flag=1),
        ]
    if name == "patients":
        return [_row(header, subject_id=10011, gender="M", anchor_age=91, anchor_year=2188,
                     anchor_year_group="2017 - 2019", dod="2190-02-02")]
    if name == "labevents":
        return [
            _row(header, labevent_id=901, subject_id=10001, hadm_id=20001, itemid=50912,
                 charttime="2150-03-20 08:00:00", value="3.9", valuenum=3.9,
                 valueuom="mg/dL", priority="STAT"),   # hour 120: after the window
            _row(header, labevent_id=902, subject_id=10001, hadm_id=20001, itemid=50931,
                 charttime="", value="99", valuenum=99, valueuom="mg/dL"),  # undated
            _row(header, labevent_id=903, subject_id=10011, hadm_id=20013, itemid=50912,
                 charttime="2190-02-01 11:00:00", value="2.8", valuenum=2.8,
                 valueuom="mg/dL", flag="abnormal", priority="STAT"),
            _row(header, labevent_id=904, subject_id=10011, hadm_id=20013, itemid=51301,
                 charttime="2190-02-02 09:30:00", value="___", valueuom="K/uL"),
        ]
    if name == "chartevents":
        return [_row(header, subject_id=10011, hadm_id=20013, stay_id=30005,
                     charttime="2190-02-01 13:00:00", itemid=220045, value="128",
                     valuenum=128, valueuom="bpm")]
    return []


def _write_ecgs(root: Path) -> None:
    import wfdb
    from scipy.signal import resample_poly

    from medshard.sources.ecg.ptbxl_fixture import LEADS, real_ecg_mv

    ecg, fs = real_ecg_mv()
    at500 = resample_poly(ecg, 1, int(fs // 500), axis=0)[:5000]
    by_name = {n.lower(): at500[:, i] for i, n in enumerate(LEADS)}
    signal = np.stack([by_name[n.lower()] for n in MIMIC_LEADS], axis=1)
    base = root / "mimic-iv-ecg"
    rows = []
    for k, (subject, study, when, truncated) in enumerate(ECGS):
        s = str(subject)
        rel = f"files/p{s[:4]}/p{s}/s{study}"
        out = base / rel
        out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromisoformat(when)
        wfdb.wrsamp(str(study), fs=500, units=["mV"] * 12, sig_name=MIMIC_LEADS,
                    p_signal=np.roll(signal, 311 * k, axis=0), fmt=["16"] * 12,
                    adc_gain=[200.0] * 12, baseline=[0] * 12, write_dir=str(out),
                    base_date=stamp.date(), base_time=stamp.time())
        if truncated:
            dat = out / f"{study}.dat"
            dat.write_bytes(dat.read_bytes()[:5000])
        rows.append([subject, study, study, when, f"{rel}/{study}"])
    with open(base / "record_list.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["subject_id", "study_id", "file_name", "ecg_time", "path"])
        w.writerows(rows)


def _write_cxrs(root: Path) -> None:
    from PIL import Image

    from medshard.sources.cxr.chexpert_fixture import real_radiographs
    from medshard.sources.cxr.mimic_cxr_fixture import METADATA_COLUMNS

    img = real_radiographs()[0]
    base = root / "mimic-cxr-jpg"
    rows = []
    for k, (subject, study, dicom, date, time, view) in enumerate(CXRS):
        s = str(subject)
        out = base / f"files/p{s[:2]}/p{s}/s{study}"
        out.mkdir(parents=True, exist_ok=True)
        crop = img[k * 40:, k * 30:]
        small = Image.fromarray(crop).resize((96, 96), Image.Resampling.LANCZOS)
        small.save(out / f"{dicom}.jpg", format="JPEG", quality=90)
        rows.append([dicom, subject, study, "CHEST (PORTABLE AP)", view, 96, 96, date, time,
                     "CHEST (PORTABLE AP)", "antero-posterior", "Erect"])
    write_table(base / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_COLUMNS, rows)


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for module, names in (("hosp", HOSP), ("icu", ICU)):
        for name in names:
            header, rows = _read(f"mimic-iv-test-{module}-{name.replace('_', '-')}")
            write_table(root / module / f"{name}.csv.gz", header,
                        rows + _extra_rows(name, header))
    _write_ecgs(root)
    _write_cxrs(root)
    return root


def outside_path(root: Path, outside: Path):
    """record_list.csv names an ECG under `../outside-mimic-iv/`: the row is refused."""
    from medshard.testing.adversarial import Expect, csv_line_count, plant_outside

    path = root / "mimic-iv-ecg" / "record_list.csv"
    plant_outside(outside, "secret.hea", b"secret 12 500 5000\n")
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            [10009, 40000099, 40000099, "2175-03-01 10:00:00", f"../../{outside.name}/secret"])
    return Expect({f"mimic-iv-ecg/record_list.csv:{first}": "list"},
                  {f"mimic-iv-ecg/record_list.csv:{first}": "not under files/"})


def malformed_rows(root: Path, outside: Path):
    """Admissions rows with a non-numeric hadm_id, a discharge before admission and an
    unknown hospital_expire_flag."""
    from medshard.testing.adversarial import Expect

    path = root / "hosp" / "admissions.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    template = dict(zip(header, body[0], strict=True))
    bad = [dict(template, hadm_id="2x001"),
           dict(template, hadm_id="20901", dischtime="2150-03-01 00:00:00"),
           dict(template, hadm_id="20902", hospital_expire_flag="maybe")]
    write_table(path, header, body + [[b[c] for c in header] for b in bad])
    first = len(rows) + 1
    lines = range(first, first + len(bad))
    return Expect({f"hosp/admissions.csv.gz:{n}": "list" for n in lines},
                  {f"hosp/admissions.csv.gz:{first + 1}": "before admittime"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 2},
        quarantined={BROKEN_ADMISSION: "load"},
        filtered={"no EHR event in the input window": 3},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        # shifted dates of the tables, the ECG header (dd/mm/yyyy) and the CXR StudyDate,
        # and the real-year anchor group: none may leave the source
        phi_markers=("2150-03-15", "2150-03-20", "2190-02-01", "2145-12-02", "15/03/2150",
                     "01/02/2190", "21500315", "21800611", "2017 - 2019", "10:30:00"),
        real="mimic-explorer's synthetic MIMIC-IV tables (real column layout, synthetic "
        "rows); the 12-lead ECG in pydicom's `waveform_ecg.dcm` as MIMIC-IV-ECG WFDB; "
        "pydicom-data's `RG1_UNCR.dcm` radiograph as MIMIC-CXR-JPG JPEGs",
        illustrative="every patient, admission and event (synthetic, declared so); ECG and "
        "X-ray ids and times; one truncated ECG (quarantined); three admissions without an event in the 48-h window (filtered)",
    )


FIXTURE = _fixture()
