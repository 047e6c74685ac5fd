"""A miniature ABCD connectome copy in the layout CLIMB reads (BrainNetworkTransformer's
files): `abcd_rest-pearson-HCP2016.npy`, `ids_HCP2016.txt`, `id2sex.txt`, plus the
optional time series (`abcd_rest-timeseires-HCP2016.npy`, `ids_HCP2016_timeseires.txt`).

Real: the ROI series are real BOLD signal (nibabel's bundled `functional.nii` averaged
over an illustrative 24-box atlas, `fixture_series`), and each matrix is numpy's Pearson
correlation of them; the file formats (`.npy` N x R x R float32, one id per line, an
`id,sex` CSV). Illustrative: the atlas (24 boxes, not HCP 2016's 360 ROIs), the ids
(NDA-GUID-shaped, not ABCD subjects) and sexes. On purpose: a subject missing from
id2sex.txt (filtered, as CLIMB and BNT drop it), and one whose ROI 3 row is NaN (a constant
series upstream: kept with the ROI zeroed and listed, the default).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medshard.sources.brain_networks.abcd import ID2SEX, IDS, PEARSON, SERIES, SERIES_IDS
from medshard.sources.brain_networks.fixture_series import roi_series
from medshard.testing.fixture import Fixture

# id, sex (None: not in id2sex.txt), (shift, drop)
SUBJECTS = [
    ("NDAR_INV0A1B2C3D", "M", (0, 0)),
    ("NDAR_INV1E2F3G4H", "F", (1, 1)),
    ("NDAR_INV2J3K4L5M", "F", (2, 2)),
    ("NDAR_INV3N4P5R6S", "M", (3, 0)),
    ("NDAR_INV4T5U6V7W", "M", (4, 3)),
    ("NDAR_INV5X6Y7Z8A", "F", (5, 1)),
    ("NDAR_INV6B7C8D9E", None, (6, 0)),  # no sex: filtered
    ("NDAR_INV7F8G9H0J", "F", (7, 2)),  # ROI 3 NaN in the shipped matrix
]
NAN_SUBJECT, NAN_ROI = "NDAR_INV7F8G9H0J", 2
T = 16  # time points kept in the series file (one length for the N x R x T array)


def write_fixture(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    series = [roi_series(*s[2])[:T] for s in SUBJECTS]
    mats = np.stack([np.corrcoef(x, rowvar=False) for x in series]).astype(np.float32)
    k = [s[0] for s in SUBJECTS].index(NAN_SUBJECT)
    mats[k, NAN_ROI, :] = np.nan
    mats[k, :, NAN_ROI] = np.nan
    np.save(root / PEARSON, mats)
    (root / IDS).write_text("".join(f"{s[0]}\n" for s in SUBJECTS))
    np.save(root / SERIES, np.stack([x.T for x in series]).astype(np.float32))  # N x R x T
    (root / SERIES_IDS).write_text("".join(f"{s[0]}\n" for s in SUBJECTS))
    with open(root / ID2SEX, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sex"])
        w.writerows([s[0], s[1]] for s in reversed(SUBJECTS) if s[1] is not None)  # matched by id
    return root


def outside_path(root: Path, outside: Path):
    """An id with `..` in it (ids name no file, so it is refused as an id)."""
    from medshard.testing.adversarial import Expect
    ids = (root / IDS).read_text().splitlines()
    ids[0] = f"../{outside.name}/NDAR_INV0A1B2C3D"
    (root / IDS).write_text("\n".join(ids) + "\n")
    return Expect({f"{IDS}:1": "list"})


def malformed_rows(root: Path, outside: Path):
    """A sex that is not M or F, and an id listed twice."""
    from medshard.testing.adversarial import Expect, csv_line_count
    line = csv_line_count(root / ID2SEX) + 1
    with open(root / ID2SEX, "a", newline="") as f:
        csv.writer(f).writerow(["NDAR_INV9Z9Z9Z9Z", "U"])
    ids = (root / IDS).read_text().splitlines()
    ids[1] = ids[0]
    (root / IDS).write_text("\n".join(ids) + "\n")
    return Expect({f"{ID2SEX}:{line}": "list", f"{IDS}:2": "list"}, {f"{ID2SEX}:{line}": "sex"})


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 6, "val": 1},
    filtered={"no sex in id2sex.txt": 1},
    real="ROI series: real BOLD (nibabel's functional.nii over 24 parcels); matrices are "
    "numpy's Pearson correlation of them; BNT's ABCD file formats",
    illustrative="the atlas (24 boxes, not HCP 2016's 360); ids and sexes; a subject without "
    "a sex (filtered) and a NaN ROI row (zeroed and listed)",
)
