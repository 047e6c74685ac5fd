"""A miniature ABIDE I preprocessed (PCP) in the bucket's layout: the phenotypic CSV and
`Outputs/cpac/filt_noglobal/rois_cc200/<FILE_ID>_rois_cc200.1D` ROI time series.

Real: every ROI series is real BOLD signal, nibabel's bundled `functional.nii` averaged
over the parcels of an illustrative atlas (`fixture_series`); the `.1D` format (`#1 #2 ...`
header, one tab-separated row per volume), the phenotypic file's name and column names.
Illustrative: the atlas (24 boxes, not CC200's 200 parcels, though filed as rois_cc200),
every phenotypic row (ids, sites, diagnoses, ages, notes: synthetic, not ABIDE subjects).
Broken on purpose: a subject whose .1D is missing (quarantined at load), one whose .1D is
truncated mid-row (quarantined at load), a subject with FILE_ID `no_filename` (filtered),
and one whose first ROI is constant (kept with that ROI zeroed and listed, the default);
malformed phenotypic rows (a DX_GROUP or SEX that is not a code, a blank SUB_ID, an age
that is not a number) are the adversarial case `malformed_row` (quarantined at list). PHI markers sit
in the free-text columns (MEDICATION_NAME, qc_notes_rater_1), never allow-listed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medshard.sources.brain_networks.abide import PHENOTYPIC
from medshard.sources.brain_networks.fixture_series import N_ROIS, roi_series
from medshard.testing.fixture import Fixture

DERIVATIVE = "Outputs/cpac/filt_noglobal/rois_cc200"
PHI_NOTE = "Quillfeather^Rosamund"
PHI_MED = "prescribed-by-Dr-Abernathy-Quist"
HEADER = ["SUB_ID", "X", "subject", "SITE_ID", "FILE_ID", "DX_GROUP", "DSM_IV_TR",
          "AGE_AT_SCAN", "SEX", "HANDEDNESS_CATEGORY", "FIQ", "CURRENT_MED_STATUS",
          "MEDICATION_NAME", "COMORBIDITY", "func_mean_fd", "qc_rater_1", "qc_notes_rater_1"]
# SUB_ID, SITE_ID, DX_GROUP, DSM_IV_TR, AGE_AT_SCAN, SEX, func_mean_fd, series (shift, drop)
GOOD = [
    (50003, "Pitt", 1, 1, 24.45, 1, 0.12, (0, 0)),
    (50004, "Pitt", 2, 0, 19.09, 1, 0.08, (1, 1)),
    (50952, "NYU", 1, 2, 9.5, 2, 0.21, (2, 2)),
    (50953, "NYU", 2, 0, 11.2, 1, -9999, (3, 0)),
    (50272, "UM_1", 1, 1, 14.0, 1, 0.05, (4, 3)),
    (50273, "UM_1", 2, 0, 15.5, 2, 0.07, (5, 1)),
    (50274, "UM_1", 2, -9999, 16.1, 1, 0.09, (6, 2)),
]
CONSTANT = (51456, "Caltech", 1, 1, 44.2, 1, 0.15, (7, 0))  # ROI #1 constant
MISSING = (50772, "KKI", 2, 0, 10.0, 2, 0.11, (8, 0))  # no .1D file
TRUNCATED = (50682, "Leuven_1", 1, 1, 21.0, 1, 0.1, (9, 1))  # last row cut short
NO_FILE = (51556, "SBL", 1, 1, 35.0, 1, 0.2, (0, 0))  # FILE_ID no_filename


def file_id(sub: int, site: str) -> str:
    return f"{site}_{sub:07d}"


def write_1d(path: Path, series: np.ndarray) -> None:
    lines = ["\t".join(f"#{i + 1}" for i in range(series.shape[1]))]
    lines += ["\t".join(f"{v:.6f}" for v in row) for row in series]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _row(n: int, entry: tuple, fid: str) -> list:
    sub, site, dx, dsm, age, sex, fd, _ = entry
    return [sub, n, sub, site, fid, dx, dsm, age, sex, "R", 100 + n, 1 if n % 3 == 0 else 0,
            PHI_MED if n == 2 else "", "", fd, "OK", PHI_NOTE if n == 1 else ""]


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    entries = [*GOOD, CONSTANT, MISSING, TRUNCATED, NO_FILE]
    for n, entry in enumerate(entries, start=1):
        sub, site = entry[0], entry[1]
        fid = "no_filename" if entry is NO_FILE else file_id(sub, site)
        rows.append(_row(n, entry, fid))
        if entry in (MISSING, NO_FILE):
            continue
        series = roi_series(*entry[7])
        if entry is CONSTANT:
            series[:, 0] = 0.0  # PCP writes zeros for a parcel outside the brain mask
        path = root / DERIVATIVE / f"{fid}_rois_cc200.1D"
        write_1d(path, series)
        if entry is TRUNCATED:
            text = path.read_text()
            path.write_text(text[: text.rstrip("\n").rfind("\t") - 3])
    with open(root / PHENOTYPIC, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return root


def _append(root: Path, rows: list[list]) -> list[int]:
    from medshard.testing.adversarial import csv_line_count
    path = root / PHENOTYPIC
    first = csv_line_count(path) + 1
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return list(range(first, first + len(rows)))


def outside_path(root: Path, outside: Path):
    """A FILE_ID with `..` in it that leads to a .1D outside the root."""
    from medshard.testing.adversarial import Expect, plant_outside
    data = (root / DERIVATIVE / f"{file_id(50003, 'Pitt')}_rois_cc200.1D").read_bytes()
    plant_outside(outside, "Evil_0077777_rois_cc200.1D", data)
    lines = _append(root, [[77777, 0, 77777, "Pitt", f"../../../../{outside.name}/Evil_0077777",
                            1, 1, 20.0, 1, "R", 100, 0, "", "", 0.1, "OK", ""]])
    return Expect({f"{PHENOTYPIC}:{lines[0]}": "list"})


def malformed_rows(root: Path, outside: Path):
    """A SEX outside 1/2, a blank SUB_ID, a non-numeric age, a DX_GROUP that is a word."""
    from medshard.testing.adversarial import Expect
    lines = _append(root, [
        [77001, 0, 77001, "Pitt", "Pitt_0077001", 1, 1, 20.0, 3, "R", 100, 0, "", "", 0.1, "OK", ""],
        ["", 0, "", "Pitt", "Pitt_0077002", 1, 1, 20.0, 1, "R", 100, 0, "", "", 0.1, "OK", ""],
        [77003, 0, 77003, "Pitt", "Pitt_0077003", 1, 1, "twenty", 1, "R", 100, 0, "", "", 0.1,
         "OK", ""],
        [77004, 0, 77004, "Pitt", "Pitt_0077004", "autism", 1, 20.0, 1, "R", 100, 0, "", "",
         0.1, "OK", ""],
    ])
    return Expect({f"{PHENOTYPIC}:{n}": "list" for n in lines},
                  {f"{PHENOTYPIC}:{lines[0]}": "SEX"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 7, "test": 1},
    quarantined={file_id(*MISSING[:2]): "load", file_id(*TRUNCATED[:2]): "load"},
    filtered={"no preprocessed data (FILE_ID no_filename)": 1},
    phi_markers=(PHI_NOTE, PHI_MED),
    adversarial={"outside_path": outside_path, "malformed_row": malformed_rows},
    real=f"ROI series: real BOLD from nibabel's functional.nii averaged over {N_ROIS} parcels; "
    "the PCP .1D format and phenotypic column names",
    illustrative="the atlas (24 boxes filed as rois_cc200); every phenotypic row (synthetic); "
    "a missing and a truncated .1D (quarantined), a no_filename subject (filtered), a "
    "constant ROI (zeroed and listed)",
)
