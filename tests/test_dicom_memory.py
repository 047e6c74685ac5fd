"""Large images decode in bounded memory, to the values pydicom computes.

The peak is measured with tracemalloc (numpy reports its buffers to it), which counts
allocations, not time, so the bound is deterministic. benchmarks/mammo_memory.py gives
the figures for a 4000 x 5000 mammogram through a whole build.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian

from medshard.formats.dicom import read_image

HEIGHT, WIDTH = 2000, 1500


def _write(path: Path, rescale: tuple[int, int] | None) -> None:
    """pydicom-data's real RG1_UNCR radiograph (MONOCHROME1, 15-bit) tiled to HEIGHT x WIDTH."""
    ds = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    src = ds.pixel_array
    reps = (-(-HEIGHT // src.shape[0]), -(-WIDTH // src.shape[1]))
    ds.Rows, ds.Columns = HEIGHT, WIDTH
    ds.PixelData = np.tile(src, reps)[:HEIGHT, :WIDTH].astype(np.uint16).tobytes()
    ds["PixelData"].VR = "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = "MG"
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.save_as(path, enforce_file_format=True)


def _expected(path: Path) -> np.ndarray:
    """pydicom's modality LUT output mirrored over the LUT's output range (MONOCHROME1)."""
    ds = pydicom.dcmread(path)
    out = np.asarray(apply_modality_lut(ds.pixel_array, ds)).astype(np.int64)
    slope = int(ds.get("RescaleSlope", 1))
    intercept = int(ds.get("RescaleIntercept", 0))
    ends = (intercept, (2 ** int(ds.BitsStored) - 1) * slope + intercept)
    return min(ends) + max(ends) - out


@pytest.mark.parametrize("rescale", [None, (1, 0)])
def test_mammogram_decodes_below_three_times_its_pixel_bytes(tmp_path, rescale):
    path = tmp_path / "mg.dcm"
    _write(path, rescale)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        image = read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pixel_bytes = HEIGHT * WIDTH * 2
    assert image.pixels.dtype == np.uint16
    assert peak < 3 * pixel_bytes, f"peak {peak / pixel_bytes:.2f}x the pixel bytes"
    np.testing.assert_array_equal(image.pixels.astype(np.int64), _expected(path))
    assert image.descriptor["inverted_from"] == 2 ** 15 - 1


def test_blockwise_rescale_and_inversion_equal_pydicom(tmp_path):
    path = tmp_path / "mg.dcm"
    _write(path, (2, 100))
    image = read_image(path)
    assert image.descriptor["rescale_applied"] is True
    np.testing.assert_array_equal(image.pixels.astype(np.int64), _expected(path))


def test_decode_image_leaves_the_callers_pixel_array_alone(tmp_path):
    from medshard.formats.dicom import decode_image

    path = tmp_path / "mg.dcm"
    _write(path, None)
    ds = pydicom.dcmread(path)
    before = ds.pixel_array.copy()
    image = decode_image(ds)
    np.testing.assert_array_equal(ds.pixel_array, before)  # inverted into a new array
    np.testing.assert_array_equal(image.pixels.astype(np.int64), _expected(path))
