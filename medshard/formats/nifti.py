"""NIfTI volumes (and any voxel grid with an affine): opened with checks, read exactly, put in RAS+.

Every CT and MR source reads its volumes through here, so a broken file is refused with
the same one-line reasons everywhere, and every volume payload is described the same way:

- `open_volume`: `nibabel.load` with nibabel's many header errors turned into one
  RecordError; refuses a file that is not `ndim`-D and one whose affine is not finite
  and invertible (no voxel grid in space: reorienting it would be meaningless).
- `read_voxels`: the stored array with the header's scl_slope / scl_inter applied
  exactly (integer result where slope and intercept are integers, else float32).
- `to_ras`: permutation and flips to RAS+ (nibabel's `as_closest_canonical`: array axis
  i increases towards R, A, S), never resampling; copies at most once.
- `read_ras`: `to_ras(read_voxels(img))`, a file cut short turned into a RecordError.
- `volume_payload`: the `volume` payload of an RAS array: its affine, the voxel size
  along each array axis, its shape, dtype and units.

What leaves this module is voxels and geometry; NIfTI's free-text fields (descrip,
aux_file, intent_name) are never read.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import voxel_sizes
from nibabel.orientations import aff2axcodes, apply_orientation, inv_ornt_aff, io_orientation

from medshard.schemas import Payload, RecordError


def open_volume(path: Path, rel: str, *, ndim: int = 3, what: str = "CT") -> nib.Nifti1Image:
    """The NIfTI image at `path` (header only; voxels stay on disk until read).

    Raises RecordError, naming `rel`, when nibabel cannot parse the header, the image
    is not `ndim`-D, or its affine is not finite and invertible.
    """
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises several types for broken headers
        raise RecordError(f"{rel}: unreadable NIfTI ({type(exc).__name__}); re-download "
                          "it") from None
    if len(img.shape) != ndim:
        raise RecordError(f"{rel} is {len(img.shape)}-D {img.shape}; expected a {ndim}-D "
                          f"{what}")
    affine = img.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise RecordError(f"{rel}: the NIfTI affine is not invertible (no voxel grid in "
                          "space); the header is broken: re-download it")
    return img


def source_orientation(affine: np.ndarray) -> str:
    """The axis codes of `affine` as stored, e.g. "LPS" (kept in a sample's meta)."""
    return "".join(aff2axcodes(affine))


def read_voxels(img: nib.Nifti1Image) -> np.ndarray:
    """The voxel array in its stored dtype, with the header's scaling applied exactly.

    No scaling (slope 1, intercept 0, the usual CT case): the stored array as is. Integer
    slope and intercept on integer data: an integer array wide enough for the result.
    Any other scaling: float32.
    """
    proxy = img.dataobj
    slope = float(getattr(proxy, "slope", 1.0))
    inter = float(getattr(proxy, "inter", 0.0))
    raw = np.asanyarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asarray(proxy)
    if slope == 1.0 and inter == 0.0:
        return raw
    if raw.dtype.kind in "iu" and slope.is_integer() and inter.is_integer():
        info = np.iinfo(raw.dtype)
        bounds = sorted((info.min * slope + inter, info.max * slope + inter))
        out = np.int16 if -(2**15) <= bounds[0] and bounds[1] < 2**15 else np.int32
        scaled = raw.astype(out)
        scaled *= int(slope)
        scaled += int(inter)
        return scaled
    return (raw.astype(np.float32) * np.float32(slope)) + np.float32(inter)


def to_ras(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`arr` permuted and flipped to RAS+ with its affine; C-contiguous, native byte order.

    Same result as nibabel's `as_closest_canonical`. Copies at most once (none when
    the array already is RAS, C-ordered and native-endian).
    """
    ornt = io_orientation(affine)
    new_affine = affine @ inv_ornt_aff(ornt, arr.shape)
    view = apply_orientation(arr, ornt)
    # one pass: contiguity and byte order together (torch cannot read big-endian arrays)
    out = np.asarray(view, dtype=view.dtype.newbyteorder("="), order="C")
    return out, new_affine


def read_ras(img: nib.Nifti1Image, rel: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole volume of `img` (opened by `open_volume`) in RAS+, with its affine."""
    try:
        return to_ras(read_voxels(img), img.affine)
    except (OSError, EOFError, ValueError) as exc:  # truncated gzip, short data
        raise RecordError(f"{rel}: cannot read voxels ({type(exc).__name__}); the file is "
                          "cut short: re-download it") from None


def volume_payload(volume: np.ndarray, affine: np.ndarray, *, units: str | None) -> Payload:
    """The `volume` payload of an RAS+ array (from `to_ras`) and its voxel -> world affine.

    `spacing_mm` is the voxel size along each array axis (the affine's column norms).
    """
    return Payload(kind="volume", data=volume, descriptor={
        "shape": list(volume.shape),
        "dtype": str(volume.dtype),
        "spacing_mm": [float(v) for v in voxel_sizes(affine)],
        "affine": [[float(v) for v in row] for row in affine],
        "orientation": "RAS",
        "units": units,
    })
