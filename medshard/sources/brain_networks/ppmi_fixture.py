"""A miniature BrainGB `PPMI.mat` (MATLAB 5: `X` an N x 1 cell array of R x R x V arrays,
`label` N x 1 of +1 / -1), the file CLIMB reads.

Real: the file format (written by scipy.io.savemat, read back by loadmat as CLIMB does)
and the signal the matrices come from: real BOLD ROI series (nibabel's bundled
`functional.nii` over an illustrative 24-box atlas, `fixture_series`). Illustrative: the
matrices are not DTI tractography (no diffusion data ships in any package): view 0 is
|Pearson r| of the series, view 1 r squared, view 2 |r| where |r| >= 0.3; the labels and
the atlas. Broken on purpose: a row labelled 2 (quarantined at load), a row whose cell is
24 x 23 x 3 (quarantined at load), and a row with ROI 5 NaN (kept with the ROI zeroed
and listed, the default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.sources.brain_networks.fixture_series import roi_series
from medshard.sources.brain_networks.ppmi import MAT
from medshard.testing.fixture import Fixture

# label, (shift, drop)
ROWS = [(1, (0, 0)), (-1, (1, 1)), (1, (2, 2)), (1, (3, 0)), (-1, (4, 3)), (1, (5, 1)),
        (-1, (6, 2)), (1, (7, 0)), (2, (8, 1)), (1, (9, 2))]
BAD_LABEL, BAD_SHAPE, NAN_ROW, NAN_ROI = 8, 9, 7, 4


def views(series: np.ndarray) -> np.ndarray:
    r = np.abs(np.corrcoef(series, rowvar=False))
    return np.stack([r, r**2, np.where(r >= 0.3, r, 0.0)], axis=2)


def write_fixture(root: Path) -> Path:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    cells = np.empty((len(ROWS), 1), dtype=object)
    for i, (_label, series) in enumerate(ROWS):
        cell = views(roi_series(*series))
        if i == NAN_ROW:
            cell[NAN_ROI, :, :] = np.nan
            cell[:, NAN_ROI, :] = np.nan
        if i == BAD_SHAPE:
            cell = cell[:, :-1, :]
        cells[i, 0] = cell
    labels = np.array([[label] for label, _ in ROWS], dtype=np.float64)
    savemat(root / MAT, {"X": cells, "label": labels})
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 7, "val": 1},
    quarantined={f"s{BAD_LABEL:04d}": "load", f"s{BAD_SHAPE:04d}": "load"},
    real="the MATLAB 5 file format CLIMB reads; real BOLD ROI series (nibabel's "
    "functional.nii over 24 parcels) under every matrix",
    illustrative="matrices are not DTI (|r|, r squared, thresholded |r| as three views); "
    "labels; the atlas; a label 2 and a 24 x 23 cell (quarantined), a NaN ROI (zeroed)",
)
