"""medshard.formats.nifti, checked against nibabel itself (as_closest_canonical, header zooms).

Real input: nibabel's bundled `anatomical.nii` (a real T1 volume shipped in its wheel),
re-saved under every one of the 48 axis permutations and flips an affine can carry.
"""

from __future__ import annotations

import gzip
import itertools

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes

from medshard.formats.nifti import (
    open_volume,
    read_ras,
    read_voxels,
    source_orientation,
    to_ras,
    volume_payload,
)
from medshard.schemas import RecordError
from medshard.sources.ct.kits23_fixture import nibabel_image_path


@pytest.fixture(scope="module")
def anatomical() -> nib.Nifti1Image:
    img = nib.load(nibabel_image_path("anatomical.nii"))
    return nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)


def _reoriented(img: nib.Nifti1Image, perm, flips) -> nib.Nifti1Image:
    """The same voxels on the same world grid, stored with axes permuted and flipped."""
    ornt = np.array([[p, -1 if f else 1] for p, f in zip(perm, flips, strict=True)])
    return img.as_reoriented(ornt)


ORIENTATIONS = [(perm, flips) for perm in itertools.permutations(range(3))
                for flips in itertools.product((False, True), repeat=3)]


@pytest.mark.parametrize(("perm", "flips"), ORIENTATIONS)
def test_every_stored_orientation_lands_on_nibabels_canonical_voxels(anatomical, perm, flips,
                                                                     tmp_path):
    stored = _reoriented(anatomical, perm, flips)
    path = tmp_path / "scan.nii.gz"
    stored.to_filename(path)
    img = open_volume(path, "scan.nii.gz", what="MR")
    volume, affine = read_ras(img, "scan.nii.gz")
    ref = nib.as_closest_canonical(nib.load(path))
    np.testing.assert_array_equal(volume, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(affine, ref.affine, atol=1e-6)
    assert aff2axcodes(affine) == ("R", "A", "S")
    assert source_orientation(img.affine) == "".join(aff2axcodes(stored.affine))

    desc = volume_payload(volume, affine, units=None).descriptor
    np.testing.assert_allclose(desc["spacing_mm"], ref.header.get_zooms()[:3], rtol=1e-6)
    np.testing.assert_allclose(desc["affine"], ref.affine, atol=1e-6)
    assert desc["orientation"] == "RAS"


def test_header_scaling_is_applied_exactly(tmp_path):
    raw = (np.arange(24, dtype=np.int16).reshape(2, 3, 4) * 7) - 50
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2, -1024)
    img.to_filename(tmp_path / "int.nii.gz")
    got = read_voxels(nib.load(tmp_path / "int.nii.gz"))
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, raw.astype(np.int64) * 2 - 1024)
    # nibabel's own float scaling gives the same values
    np.testing.assert_array_equal(got, nib.load(tmp_path / "int.nii.gz").get_fdata())

    img.header.set_slope_inter(0.5, 1.25)
    img.to_filename(tmp_path / "float.nii.gz")
    got = read_voxels(nib.load(tmp_path / "float.nii.gz"))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, raw * 0.5 + 1.25)


def test_to_ras_does_not_copy_an_already_ras_array():
    arr = np.zeros((4, 5, 6), dtype=np.int16)
    out, affine = to_ras(arr, np.diag([1.0, 2.0, 3.0, 1.0]))
    assert np.shares_memory(out, arr)
    np.testing.assert_array_equal(affine, np.diag([1.0, 2.0, 3.0, 1.0]))


def _singular(img: nib.Nifti1Image) -> nib.Nifti1Image:
    affine = np.array(img.affine)
    affine[:3, 2] = 0.0  # one axis without extent
    out = nib.Nifti1Image(np.asanyarray(img.dataobj), np.eye(4))
    out.set_qform(None, code=0)
    out.set_sform(affine, code=2)
    return out


def test_each_broken_file_is_refused_in_one_line_naming_it(anatomical, tmp_path):
    cases = {
        "garbage.nii": (None, r"^garbage.nii: unreadable NIfTI \(\w+\); re-download it$"),
        "fourd.nii.gz": (nib.Nifti1Image(np.zeros((2, 3, 4, 5), np.int16), np.eye(4)),
                         r"^fourd.nii.gz is 4-D \(2, 3, 4, 5\); expected a 3-D CT$"),
        "singular.nii.gz": (_singular(anatomical),
                            r"^singular.nii.gz: the NIfTI affine is not invertible"),
    }
    (tmp_path / "garbage.nii").write_bytes(b"not a NIfTI header at all" * 20)
    for name, (img, _) in cases.items():
        if img is not None:
            img.to_filename(tmp_path / name)
    for name, (_, message) in cases.items():
        with pytest.raises(RecordError, match=message) as err:
            open_volume(tmp_path / name, name)
        assert "\n" not in str(err.value)


def test_a_file_cut_short_is_refused_when_its_voxels_are_read(anatomical, tmp_path):
    anatomical.to_filename(tmp_path / "whole.nii.gz")
    data = gzip.decompress((tmp_path / "whole.nii.gz").read_bytes())
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(data[: len(data) // 2]))
    img = open_volume(tmp_path / "short.nii.gz", "short.nii.gz")  # the header is whole
    with pytest.raises(RecordError, match=r"^short.nii.gz: cannot read voxels .*cut short"):
        read_ras(img, "short.nii.gz")
