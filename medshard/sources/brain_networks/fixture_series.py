"""Real BOLD ROI time series for the brain-network fixtures, from nibabel's bundled fMRI.

Real: nibabel's `tests/data/functional.nii` (a 17 x 21 x 3 voxel, 20-volume EPI run at
TR 2 s, shipped in nibabel's wheel). Illustrative: the parcellation. Each voxel goes to a
box of an illustrative atlas (x in 4 bands, y in 3, z in 2: 24 ROIs), each subject's
boxes shifted by a few voxels and its run cropped by a few volumes, so that subjects
differ while every series stays a real BOLD signal averaged over real voxels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_ROIS = 24


@lru_cache(maxsize=1)
def functional_run() -> np.ndarray:
    """nibabel's functional.nii as float64, x * y * z * t."""
    import nibabel

    from medshard.sources.ct.kits23_fixture import nibabel_image_path

    img = nibabel.load(nibabel_image_path("functional.nii"))
    return np.asarray(img.dataobj, dtype=np.float64)


def parcel_labels(shift: int) -> np.ndarray:
    """The illustrative atlas (x: 4 bands, y: 3, z: 2; 24 parcels) shifted by `shift`."""
    x, y, z = functional_run().shape[:3]
    gx = ((np.arange(x) + shift) % x) * 4 // x
    gy = ((np.arange(y) + 2 * shift) % y) * 3 // y
    gz = np.minimum(np.arange(z) * 2 // z, 1)
    return gx[:, None, None] * 6 + gy[None, :, None] * 2 + gz[None, None, :]


def roi_series(shift: int, drop: int) -> np.ndarray:
    """T x 24 mean BOLD per parcel: the run without its first `drop` volumes."""
    run = functional_run()[..., drop:]
    labels = parcel_labels(shift)
    return np.stack([run[labels == k].mean(axis=0) for k in range(N_ROIS)], axis=1)
