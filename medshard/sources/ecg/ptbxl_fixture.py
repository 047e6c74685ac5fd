"""A miniature PTB-XL in its real layout, from the real 12-lead ECG that pydicom ships.

Real: the waveform (pydicom's `waveform_ecg.dcm`, 12 leads, 1 kHz, 10 s), written as
WFDB records at 500 Hz (`records500/`) and 100 Hz (`records100/`) with wfdb's writer.
Illustrative: the record and patient ids, demographics, folds and SCP codes; each
record is the same recording circularly shifted, so records differ but are not
independent. One record has its first 0.1 s zeroed on all leads to show CLIMB's filter;
one is missing from records500/, so the build reads it from records100/ and the manifest
counts it under its original rate.
The scp_statements.csv rows are the real PTB-XL definitions of the codes used here.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]

# code, description, diagnostic, form, rhythm, diagnostic_class, diagnostic_subclass
SCP_STATEMENTS = [
    ("NORM", "normal ECG", 1, None, None, "NORM", "NORM"),
    ("IMI", "inferior myocardial infarction", 1, None, None, "MI", "IMI"),
    ("ASMI", "anteroseptal myocardial infarction", 1, None, None, "MI", "AMI"),
    ("LVH", "left ventricular hypertrophy", 1, None, None, "HYP", "LVH"),
    ("LAFB", "left anterior fascicular block", 1, None, None, "CD", "LAFB/LPFB"),
    ("IRBBB", "incomplete right bundle branch block", 1, None, None, "CD", "IRBBB"),
    ("NDT", "non-diagnostic T abnormalities", 1, 1, None, "STTC", "STTC"),
    ("SR", "sinus rhythm", None, None, 1, None, None),
    ("AFIB", "atrial fibrillation", None, None, 1, None, None),
    ("AFLT", "atrial flutter", None, None, 1, None, None),
    ("STACH", "sinus tachycardia", None, None, 1, None, None),
    ("LVOLT", "low QRS voltages in the frontal and horizontal leads", None, 1, None, None, None),
    ("STD_", "non-specific ST depression", None, 1, None, None, None),
    ("INVT", "inverted T-waves", None, 1, None, None, None),
]

# (scp_codes, strat_fold, age, sex) per record; illustrative
RECORDS = [
    ({"NORM": 100.0, "SR": 0.0}, 3, 56, 1),
    ({"IMI": 80.0, "SR": 0.0}, 1, 67, 0),
    ({"LVH": 100.0, "NDT": 50.0, "SR": 0.0}, 5, 71, 0),
    ({"AFIB": 100.0, "LAFB": 100.0}, 2, 80, 1),
    ({"SR": 0.0}, 7, 34, 1),
    ({"STACH": 100.0, "LVOLT": 0.0}, 8, 45, 0),
    ({"ASMI": 100.0, "IRBBB": 100.0, "SR": 0.0}, 4, 62, 0),
    ({"AFLT": 100.0}, 6, 77, 1),
    ({"NORM": 100.0, "SR": 0.0}, 9, 29, 0),
    ({"STD_": 0.0, "SR": 0.0}, 9, 58, 1),  # form + rhythm only: STTC, never Normal
    ({"NORM": 80.0, "SR": 0.0}, 10, 41, 1),
    ({"IMI": 100.0, "AFIB": 0.0}, 10, 73, 0),
]
ZEROED_RECORD = 6  # 1-based ecg_id whose first 0.1 s is zero on all leads
LOW_RATE_ONLY_RECORD = 12  # 1-based ecg_id missing from records500/: read at 100 Hz


def real_ecg_mv() -> tuple[np.ndarray, float]:
    """pydicom's real 12-lead ECG as (T x 12 float64 in mV, sampling rate)."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    wave = ds.WaveformSequence[0]
    data = ds.waveform_array(0).astype(np.float64) / 1000.0  # channel sensitivity is in uV
    return data, float(wave.SamplingFrequency)


def write_raw(root: Path, n_records: int | None = None) -> Path:
    """Write the miniature PTB-XL under `root`; returns root."""
    import wfdb
    from scipy.signal import resample_poly

    root.mkdir(parents=True, exist_ok=True)
    ecg, fs = real_ecg_mv()
    at500 = resample_poly(ecg, 1, int(fs // 500), axis=0)
    at100 = resample_poly(ecg, 1, int(fs // 100), axis=0)
    n = n_records or len(RECORDS)
    records = [RECORDS[i % len(RECORDS)] for i in range(n)]
    rows = []
    for i, (codes, fold, age, sex) in enumerate(records, start=1):
        shift = (i - 1) * 0.37
        lr_name, hr_name = f"{i:05d}_lr", f"{i:05d}_hr"
        group = f"{(i // 1000) * 1000:05d}"  # PhysioNet groups records by thousands
        for rate, sig, folder, name in ((500, at500, "records500", hr_name),
                                        (100, at100, "records100", lr_name)):
            out_dir = root / folder / group
            original = (i - 1) % len(RECORDS) + 1
            if rate == 500 and original == LOW_RATE_ONLY_RECORD:
                continue
            if i > len(RECORDS):  # larger sets (benchmarks) clone the first records' files
                _clone_record(root / folder / "00000" / f"{original:05d}{name[5:]}",
                              out_dir / name)
                continue
            s = np.roll(sig, int(shift * rate), axis=0)
            if i == ZEROED_RECORD:
                s = s.copy()
                s[: int(0.1 * rate)] = 0.0
            out_dir.mkdir(parents=True, exist_ok=True)
            wfdb.wrsamp(
                name, fs=rate, units=["mV"] * 12, sig_name=LEADS, p_signal=s,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(out_dir),
            )
        rows.append({
            "ecg_id": i, "patient_id": f"{_patient(i)}.0", "age": f"{age}.0", "sex": sex,
            "height": "", "weight": "", "nurse": "2.0", "site": "0.0", "device": "CS-12   E",
            "recording_date": "1990-01-01 00:00:00", "report": "illustrative report text",
            "scp_codes": repr(codes), "heart_axis": "", "infarction_stadium1": "",
            "infarction_stadium2": "", "validated_by": "", "second_opinion": "False",
            "initial_autogenerated_report": "False", "validated_by_human": "True",
            "baseline_drift": "", "static_noise": "", "burst_noise": "",
            "electrodes_problems": "", "extra_beats": "", "pacemaker": "", "strat_fold": fold,
            "filename_lr": f"records100/{group}/{lr_name}",
            "filename_hr": f"records500/{group}/{hr_name}",
        })
    with open(root / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_scp_statements(root / "scp_statements.csv")
    return root


def _patient(ecg_id: int) -> int:
    """Records 2 and 3 share a patient (both train, as PTB-XL keeps a patient in one fold)."""
    return 1000 + (ecg_id // 2 if ecg_id <= 3 else ecg_id)


def _clone_record(src: Path, dst: Path) -> None:
    """Copy a WFDB record under a new name (the header names its record and signal file)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    header = src.with_suffix(".hea").read_text().replace(src.name, dst.name)
    dst.with_suffix(".hea").write_text(header)
    dst.with_suffix(".dat").write_bytes(src.with_suffix(".dat").read_bytes())


def write_scp_statements(path: Path) -> None:
    header = ["", "description", "diagnostic", "form", "rhythm", "diagnostic_class",
              "diagnostic_subclass", "Statement Category", "SCP-ECG Statement Description",
              "AHA code", "aECG REFID", "CDISC Code", "DICOM Code"]
    fmt = lambda v: "" if v is None else (f"{float(v)}" if isinstance(v, int) else v)  # noqa: E731
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for code, desc, diag, form, rhythm, cls, sub in SCP_STATEMENTS:
            w.writerow([code, desc, fmt(diag), fmt(form), fmt(rhythm), fmt(cls), fmt(sub),
                        "", desc, "", "", "", ""])


BROKEN_RECORD = 13  # listed in ptbxl_database.csv; its .dat is cut short


def write_fixture(root: Path) -> Path:
    """The miniature plus one broken record: a row whose 500 Hz signal file is truncated."""
    write_raw(root)
    src = root / "records500" / "00000" / "00001_hr"
    dst = root / "records500" / "00000" / f"{BROKEN_RECORD:05d}_hr"
    _clone_record(src, dst)
    data = dst.with_suffix(".dat").read_bytes()
    dst.with_suffix(".dat").write_bytes(data[: len(data) // 3])
    with open(root / "ptbxl_database.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    row = dict(rows[0], ecg_id=BROKEN_RECORD, patient_id="1099.0", strat_fold=5,
               filename_lr=f"records100/00000/{BROKEN_RECORD:05d}_lr",
               filename_hr=f"records500/00000/{BROKEN_RECORD:05d}_hr")
    with open(root / "ptbxl_database.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(row)
    return root


def outside_path(root: Path, outside: Path):
    """Record 00002's header names its signal file `../../../outside-ptb-xl/secret.dat`."""
    from medshard.testing.adversarial import Expect, plant_outside

    hea = root / "records500" / "00000" / "00002_hr.hea"
    plant_outside(outside, "secret.dat", hea.with_suffix(".dat").read_bytes())
    hea.write_text(hea.read_text().replace("00002_hr.dat", f"../../../{outside.name}/secret.dat"))
    return Expect({"00002": "load"}, {"00002": "outside the source root"})


def malformed_rows(root: Path, outside: Path):
    """Rows with a broken scp_codes literal, a strat_fold that is no number, a non-numeric
    age, and a fold outside 1..10."""
    from medshard.testing.adversarial import Expect, csv_line_count

    path = root / "ptbxl_database.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [dict(rows[0], ecg_id=901, scp_codes="{'NORM': 100.0"),
           dict(rows[0], ecg_id=902, strat_fold="fold-3"),
           dict(rows[0], ecg_id=903, age="old"),
           dict(rows[0], ecg_id=904, strat_fold="11")]
    first = csv_line_count(path) + 1
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerows(bad)
    lines = range(first, first + len(bad))
    return Expect({f"ptbxl_database.csv:{n}": "list" for n in lines},
                  {f"ptbxl_database.csv:{first}": "SyntaxError"})


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 7, "val": 2, "test": 2},
        quarantined={f"{BROKEN_RECORD:05d}": "load"},
        filtered={"first 15 samples zero on all channels": 1},
        adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
        # the CSV's free-text report, recording date and device never leave the source
        phi_markers=("illustrative report text", "1990-01-01", "CS-12"),
        real="the 12-lead, 10 s ECG in pydicom's `waveform_ecg.dcm`, written as WFDB at 500 "
        "and 100 Hz; the SCP statement definitions",
        illustrative="ids, demographics, folds, SCP codes; records are shifted copies of the one "
        "ECG; one has its first 0.1 s zeroed to show the filter; one is only in `records100/` "
        "to show the 100 Hz fallback; one has a truncated signal file (quarantined)",
    )


FIXTURE = _fixture()
