"""Real MRI slices for the brain MRI fixtures, from the images nibabel ships in its wheel.

Real: nibabel's `tests/data/example4d.nii.gz` (a functional EPI series, 128 x 96 x 24
voxels; its first volume) and `tests/data/anatomical.nii` (a T1 volume, 33 x 41 x 25),
sliced axially, windowed to 8 bits (1st-99.5th percentile) and written as JPEG like the
Kaggle sets ship them (some grayscale, some RGB, as those sets mix both).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

EPI_SLICES = tuple(range(2, 22))  # axial slices of example4d's first volume with brain in them
ANAT_SLICES = (8, 12, 16)


def _window(slice_: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(slice_, [1, 99.5])
    scaled = np.clip((slice_.astype(np.float64) - lo) / max(hi - lo, 1e-9), 0, 1)
    # radiological display: rows top to bottom = anterior to posterior
    return np.rot90((scaled * 255).round().astype(np.uint8))


@lru_cache(maxsize=1)
def real_mri_slices() -> tuple[np.ndarray, ...]:
    """Axial slices (uint8, H x W) of nibabel's two bundled MRI volumes, EPI slices first."""
    import nibabel

    from medshard.sources.ct.kits23_fixture import nibabel_image_path

    # not nibabel.testing's data_path: that module imports pytest, which `medshard demo`
    # (the etl extra alone) does not have
    epi = np.asarray(nibabel.load(nibabel_image_path("example4d.nii.gz")).dataobj[..., 0])
    anat = np.asarray(nibabel.load(nibabel_image_path("anatomical.nii")).dataobj)
    out = [_window(epi[:, :, z]) for z in EPI_SLICES]
    out += [np.kron(_window(anat[:, :, z]), np.ones((3, 3), np.uint8)) for z in ANAT_SLICES]
    return tuple(out)


def jpeg_bytes(image: np.ndarray, rgb: bool = False, quality: int = 90) -> bytes:
    """`image` as a baseline JPEG (grayscale, or the gray replicated to RGB)."""
    from PIL import Image

    im = Image.fromarray(image)
    if rgb:
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_image(path: Path, image: np.ndarray, rgb: bool = False) -> bytes:
    data = jpeg_bytes(image, rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


# The slice planted in more than one fixture: `brain-tumor` Training and
# `brain-tumor-mri-7023` Testing (two sources, two splits), as the real sets overlap.
SHARED_SLICE = 7
# The slice planted in both splits of `brain-tumor-mri-7023` (one source, two splits).
TRAIN_TEST_SLICE = 11


def truncated_jpeg(image: np.ndarray) -> bytes:
    """A JPEG cut off in its entropy-coded data: the header parses, decoding fails."""
    data = jpeg_bytes(image)
    return data[: len(data) // 2]
