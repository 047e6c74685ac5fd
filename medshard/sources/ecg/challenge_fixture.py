"""Miniature CPSC 2018, Georgia and Chapman-Shaoxing sets in the Challenge layout, from a real ECG.

Real: the waveform (pydicom's `waveform_ecg.dcm`, 12 leads, 10 s at 1 kHz), resampled to
500 Hz with SciPy and written as the Challenge writes it: `<id>.mat` with `val` (12 x N
int16, MATLAB v4 via `scipy.io.savemat`, so WFDB's `16+24` format reads it too) and a
WFDB `<id>.hea` with gain 1000/mV, first values and checksums. The SNOMED CT codes are
real codes of each set (the Challenge's mapping files count them there).
Illustrative: record ids, ages, sexes, which codes go with which recording, the history
text; records longer than 10 s are the real 10 s repeated with a circular shift, and
every record is a shifted copy of the one ECG. Broken on purpose: a truncated `.mat`
(unreadable), a missing `.mat`, a `.mat` shorter than its header says, and (CPSC) a
code the Challenge never lists for the set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.testing.fixture import Fixture

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 500
GAIN = 1000.0  # adu per mV, as every Challenge header says
HISTORY_MARKER = "Quillfeather"  # planted in #Hx free text: must never leave the source
DATE_MARKER = "29-Feb-1996"  # the recording date on the header's first line


def real_ecg_500() -> np.ndarray:
    """pydicom's real 12-lead ECG at 500 Hz in mV, 12 x 5000."""
    from scipy.signal import resample_poly

    from medshard.sources.ecg.ptbxl_fixture import real_ecg_mv

    ecg, fs = real_ecg_mv()
    return resample_poly(ecg, FS, int(fs), axis=0).T


def ecg_of_length(seconds: float, shift_s: float) -> np.ndarray:
    """12 x (seconds * 500) mV: the real 10 s, circularly shifted, repeated to length."""
    base = np.roll(real_ecg_500(), int(shift_s * FS), axis=1)
    n = int(round(seconds * FS))
    reps = -(-n // base.shape[1])
    return np.tile(base, (1, reps))[:, :n]


def checksum16(values: np.ndarray) -> int:
    """WFDB's signal checksum: the 16-bit two's-complement sum of the samples."""
    s = int(values.astype(np.int64).sum()) & 0xFFFF
    return s - 0x10000 if s >= 0x8000 else s


def write_record(folder: Path, record: str, mv: np.ndarray, dx: list[str], age: str = "58",
                 sex: str = "Female", n_samples: int | None = None) -> np.ndarray:
    """Write `<record>.hea` + `<record>.mat`; returns the int16 `val` written.

    `n_samples` (default: the signal's length) is what the header claims.
    """
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    val = np.round(mv * GAIN).astype(np.int16)
    savemat(str(folder / f"{record}.mat"), {"val": val}, format="4")
    n = val.shape[1] if n_samples is None else n_samples
    lines = [f"{record} 12 {FS} {n} {DATE_MARKER} 09:14:02"]
    for i, lead in enumerate(LEADS):
        lines.append(f"{record}.mat 16+24 {GAIN:g}/mV 16 0 {int(val[i, 0])} "
                     f"{checksum16(val[i])} 0 {lead}")
    lines += [f"#Age: {age}", f"#Sex: {sex}", f"#Dx: {','.join(dx)}", "#Rx: Unknown",
              f"#Hx: seen by Dr {HISTORY_MARKER}", "#Sx: Unknown"]
    (folder / f"{record}.hea").write_text("\n".join(lines) + "\n")
    return val


# (record, seconds, codes, age, sex) per set; codes are real codes of that set
CPSC_RECORDS = [
    ("A0001", 37.0, ["164889003"], "74", "Male"),  # AF, 37 s: 3 windows, 7 s dropped
    ("A0002", 6.0, ["59118001", "429622005"], "61", "Female"),  # RBBB + STD, 6 s: padded
    ("A0003", 10.0, ["426783006"], "33", "Male"),  # sinus rhythm only: no concept
    ("A0004", 15.0, ["284470004", "164884008"], "NaN", "Female"),  # PAC + VEB
    ("A0005", 12.0, ["270492004"], "80", "Male"),  # 1st degree AV block
    ("A0006", 10.0, ["164909002"], "52", "Female"),  # LBBB
]
GEORGIA_RECORDS = [
    ("E00001", 10.0, ["164865005", "426783006"], "67", "Male"),  # MI + SR
    ("E00002", 10.0, ["164873001", "39732003"], "71", "Male"),  # LVH + LAD
    ("E00003", 10.0, ["164890007"], "80", "Female"),  # atrial flutter
    ("E00004", 10.0, ["426177001"], "NaN", "Unknown"),  # sinus bradycardia only
    ("E00005", 10.0, ["164934002", "59931005"], "45", "Female"),  # T abnormal + inversion
]
CHAPMAN_RECORDS = [
    ("JS00001", 10.0, ["426177001", "55827005"], "59", "Male"),  # SB + LV high voltage
    ("JS00002", 10.0, ["164889003", "164934002"], "85", "Male"),  # AF + T abnormal
    ("JS00003", 10.0, ["426783006", "164931005"], "40", "Female"),  # SR + ST elevation
    ("JS00004", 10.0, ["713422000", "270492004"], "23", "Female"),  # AT + 1st degree AV block
]


def _write_set(root: Path, records: list, folder: str) -> Path:
    base = root / "training" / folder / "g1"
    for i, (record, seconds, dx, age, sex) in enumerate(records):
        write_record(base, record, ecg_of_length(seconds, 0.61 * i), dx, age, sex)
    return base


def _truncate(mat: Path) -> None:
    data = mat.read_bytes()
    mat.write_bytes(data[: len(data) // 3])


def write_cpsc(root: Path) -> Path:
    base = _write_set(root, CPSC_RECORDS, "cpsc_2018")
    write_record(base, "A0007", ecg_of_length(10, 1.1), ["164889003"])
    _truncate(base / "A0007.mat")  # unreadable
    write_record(base, "A0008", ecg_of_length(10, 1.3), ["59118001"])
    (base / "A0008.mat").unlink()  # missing
    write_record(base, "A0009", ecg_of_length(8, 1.7), ["164889003"], n_samples=5000)  # short
    write_record(base, "A0010", ecg_of_length(10, 1.9), ["164865005"])  # MI: not a CPSC code
    return root


def write_georgia(root: Path) -> Path:
    base = _write_set(root, GEORGIA_RECORDS, "georgia")
    write_record(base, "E00006", ecg_of_length(10, 2.3), ["164889003"])
    _truncate(base / "E00006.mat")
    return root


def write_chapman(root: Path) -> Path:
    base = _write_set(root, CHAPMAN_RECORDS, "chapman_shaoxing")
    write_record(base, "JS00005", ecg_of_length(10, 2.9), ["426177001"])
    (base / "JS00005.mat").unlink()
    return root


_REAL = ("the 12-lead, 10 s ECG in pydicom's `waveform_ecg.dcm` at 500 Hz, written as Challenge "
         "`.hea` + `.mat` (`val`, MATLAB v4); real SNOMED CT codes of the set")
_ILLUSTRATIVE = ("ids, demographics, history text, which codes go with which recording; records "
                 "are shifted copies of the one ECG, longer ones repeat it")
_PHI = (HISTORY_MARKER, DATE_MARKER)

CPSC_FIXTURE = Fixture(
    write=write_cpsc,
    samples={"train": 7, "val": 1},
    quarantined={"A0007": "load", "A0008": "load", "A0009": "load", "A0010": "load"},
    phi_markers=_PHI,
    real=_REAL,
    illustrative=_ILLUSTRATIVE + "; a 37-s record gives 3 windows, a 6-s one is padded; "
    "broken: truncated, missing and short `.mat`, a code outside the set (quarantined)",
)
GEORGIA_FIXTURE = Fixture(
    write=write_georgia,
    samples={"train": 4, "val": 1},
    quarantined={"E00006": "load"},
    phi_markers=_PHI,
    real=_REAL,
    illustrative=_ILLUSTRATIVE + "; one truncated `.mat` (quarantined)",
)
CHAPMAN_FIXTURE = Fixture(
    write=write_chapman,
    samples={"train": 3, "val": 1},
    quarantined={"JS00005": "load"},
    phi_markers=_PHI,
    real=_REAL,
    illustrative=_ILLUSTRATIVE + "; one missing `.mat` (quarantined)",
)
