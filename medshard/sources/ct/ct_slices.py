"""Real CT slices for the CT fixtures: pydicom-data's and pydicom's CT images, in HU.

No contiguous CT series ships in any package (../shared/FIXTURE-DATA.md), so a fixture
volume stacks the real single slices (`693_UNCR.dcm`, 512 x 512; `CT_small.dcm`,
128 x 128; the two frames of `eCT_Supplemental.dcm`, 512 x 512), each reduced to a
common in-plane size by block averaging (declared: downsampled), with illustrative
positions along the slice axis. Every voxel value is a real attenuation in HU
(RescaleSlope/Intercept applied: pydicom's `apply_rescale`, or the enhanced CT's
shared PixelValueTransformationSequence).
"""

from __future__ import annotations

import numpy as np

SLICE_FILES = ("693_UNCR.dcm", "CT_small.dcm", "eCT_Supplemental.dcm")


def _hu_frames(name: str) -> list[np.ndarray]:
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_rescale

    ds = pydicom.dcmread(get_testdata_file(name))
    arr = ds.pixel_array
    if "RescaleSlope" in ds:
        hu = np.asarray(apply_rescale(arr, ds), dtype=np.float64)
    else:  # enhanced CT: the rescale sits in the shared functional groups
        t = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
        hu = arr.astype(np.float64) * float(t.RescaleSlope) + float(t.RescaleIntercept)
    return [hu] if hu.ndim == 2 else list(hu)


def block_mean(img: np.ndarray, size: int) -> np.ndarray:
    """`img` (square, side a multiple of `size`) reduced to size x size by block averaging."""
    f = img.shape[0] // size
    return img[: size * f, : size * f].reshape(size, f, size, f).mean(axis=(1, 3))


def real_ct_slices(size: int = 32) -> list[np.ndarray]:
    """The four real CT slices, each size x size int16 HU (block-averaged)."""
    slices = []
    for name in SLICE_FILES:
        for frame in _hu_frames(name):
            slices.append(np.rint(block_mean(frame, size)).astype(np.int16))
    return slices


def real_ct_volume(size: int = 32, depth: int = 8, shift: int = 0) -> np.ndarray:
    """A size x size x depth int16 HU volume (x, y, z) stacking the real slices in turn
    (starting at slice `shift`); slice k is the real slice transposed to (x, y)."""
    slices = real_ct_slices(size)
    return np.stack([slices[(k + shift) % len(slices)].T for k in range(depth)], axis=2)
