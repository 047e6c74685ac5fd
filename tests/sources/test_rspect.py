"""RSPECT: series assembled from real CT slices, checked voxel for voxel against SimpleITK.

The reference is SimpleITK's `ImageSeriesReader` (GDCM orders the files by position) with
nibabel's `as_closest_canonical` for the RAS reorientation: neither is medshard code.
"""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medshard.formats.dicom_series import SliceHeader, fill_volume, plan_series, read_slice_header
from medshard.schemas import BadRow, Filtered, RecordError
from medshard.sources.ct import rspect_fixture as fx
from medshard.sources.ct.rspect import RSPECT
from medshard.sources.registry import get_source

sitk = pytest.importorskip("SimpleITK")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rspect")
    fx.write_fixture(root)
    return root


def _listing(root: Path, **options):
    out = list(RSPECT(**options).list_records(root))
    records = {r.record_id: r for r in out if not isinstance(r, BadRow)}
    return records, [r for r in out if isinstance(r, BadRow)]


def _load(root: Path, name: str, **options):
    records, _ = _listing(root, **options)
    return list(RSPECT(**options).load(records[fx.BY_NAME[name].record_id], root))


def _sitk_ras(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK's volume of `files` (in the order given), as nibabel's closest-canonical
    RAS array and affine."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    img = reader.Execute()
    arr = sitk.GetArrayFromImage(img)  # (z, y, x)
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag(img.GetSpacing())  # columns: x, y, z
    lps[:3, 3] = img.GetOrigin()
    lps[:3, :3] = lps[:3, [2, 1, 0]]  # array axes are (z, y, x)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    canonical = nib.as_closest_canonical(nib.Nifti1Image(arr, ras))
    return np.asanyarray(canonical.dataobj), canonical.affine


def _gdcm_files(root: Path, spec: fx.SeriesSpec) -> list[str]:
    folder = root / "train" / spec.study / spec.series
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))


def test_listing_is_per_series_from_the_csv_only(root):
    records, bad = _listing(root)
    assert set(records) == {s.record_id for s in fx.SERIES}
    assert [(b.file, b.line) for b in bad] == [("train.csv", fx.bad_row_line())]
    rec = records[fx.BY_NAME["no-pe"].record_id]
    assert rec.subject_id == fx.BY_NAME["no-pe"].study
    assert rec.files == sorted(rec.files)  # by SOP id, i.e. not in position order
    positions = [fx.slice_path(fx.BY_NAME["no-pe"], k) for k in fx.BY_NAME["no-pe"].positions()]
    assert sorted(positions) == rec.files and positions != rec.files
    assert rec.source_labels["negative_exam_for_pe"] == 1 and len(rec.source_labels) == 13
    # one 0/1 per listed file, aligned with `files`
    chronic = records[fx.BY_NAME["chronic"].record_id]
    flags = dict(zip(chronic.files, chronic.meta["pe_present_on_image"], strict=True))
    assert [flags[fx.slice_path(fx.BY_NAME["chronic"], k)] for k in range(4)] == [0, 0, 1, 1]


@pytest.mark.parametrize("name", fx.WRITTEN)
def test_volume_equals_simpleitk_voxel_for_voxel(root, name):
    spec = fx.BY_NAME[name]
    [sample] = _load(root, name)
    vol = sample.payloads["volume"]
    ref, ref_affine = _sitk_ras(_gdcm_files(root, spec))
    assert vol.data.shape == ref.shape
    np.testing.assert_array_equal(vol.data, ref)
    np.testing.assert_allclose(np.asarray(vol.descriptor["affine"]), ref_affine, atol=1e-4)
    assert nib.aff2axcodes(np.asarray(vol.descriptor["affine"])) == ("R", "A", "S")
    assert sample.classes == [fx.CLASSES[name]]
    # spacing from positions, not SliceThickness (7.0 in every file)
    assert sample.meta["slice_spacing_mm"] == pytest.approx(spec.spacing_mm)
    assert sorted(vol.descriptor["spacing_mm"])[0] < 7.0


def test_per_image_labels_follow_the_volume_slices(root):
    spec = fx.BY_NAME["chronic"]  # coronal: slices along A; positions go towards P
    [sample] = _load(root, "chronic")
    axis = sample.meta["slice_axis"]
    assert axis == 1 and sample.payloads["volume"].data.shape[axis] == 4
    affine = np.asarray(sample.payloads["volume"].descriptor["affine"])
    # the world position of each volume slice, matched to the slice files' positions
    normal = np.cross(np.asarray(spec.orientation[:3]), np.asarray(spec.orientation[3:]))
    lps_along = [float((affine @ [0, j, 0, 1])[:3] @ (normal * [-1, -1, 1])) for j in range(4)]
    expected = [spec.pe_slices.__contains__(k) for k in range(4)]
    by_position = dict(zip([(-100.0, -120.0, -60.0) @ normal + k * spec.spacing_mm
                            for k in range(4)], expected, strict=True))
    got = [by_position[min(by_position, key=lambda p: abs(p - x))] for x in lps_along]
    assert sample.meta["pe_present_on_image"] == [int(v) for v in got]
    assert len(sample.meta["sop_instance_uids"]) == 4


def test_shuffled_series_with_a_gap_and_a_tilted_slice(root):
    """Sorted by position whatever the file order; the gap and the outlier are named."""
    spec = fx.BY_NAME["gap-and-tilt"]
    records, _ = _listing(root)
    rec = records[spec.record_id]
    names = [f.rsplit("/", 1)[-1] for f in rec.files]
    headers = [read_slice_header(root / f, i, n)
               for i, (f, n) in enumerate(zip(rec.files, names, strict=True))]
    plan = plan_series(headers, names)
    # sorted: the axial slices in position order, the tilted one set aside
    expected = [fx.slice_path(spec, k) for k in spec.positions()]
    assert [rec.files[i] for i in plan.order] == expected
    assert expected != sorted(expected)  # the file order really was shuffled
    [tilt] = plan.excluded
    assert rec.files[tilt.slices[0]] == fx.slice_path(spec, 5, tilted=True)
    [gap] = plan.problems
    assert gap.kind == "gap"
    assert [rec.files[i] for i in gap.slices] == [fx.slice_path(spec, 2), fx.slice_path(spec, 4)]
    # default: quarantined, with both reasons in the message
    with pytest.raises(RecordError) as err:
        _load(root, "gap-and-tilt")
    msg = str(err.value)
    assert "ImageOrientationPatient" in msg and spec.sop(5, tilted=True) in msg
    assert "gap of 5.000 mm" in msg and "1 slice(s) missing" in msg
    # dropping outliers does not close a gap
    with pytest.raises(RecordError, match="gap of 5.000 mm") as err:
        _load(root, "gap-and-tilt", orientation_outliers="drop")
    assert "ImageOrientationPatient" not in str(err.value)


def test_orientation_outlier_dropped_on_request_matches_simpleitk(root, tmp_path):
    spec = fx.BY_NAME["tilted"]
    with pytest.raises(RecordError, match="ImageOrientationPatient"):
        _load(root, "tilted")
    [sample] = _load(root, "tilted", orientation_outliers="drop")
    tilted = fx.slice_path(spec, 2, tilted=True).rsplit("/", 1)[-1]
    # GDCM orders the series without the outlier (with it, GDCM gives no usable order)
    for f in (root / "train" / spec.study / spec.series).iterdir():
        if f.name != tilted:
            shutil.copy(f, tmp_path / f.name)
    ref, ref_affine = _sitk_ras(list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path))))
    np.testing.assert_array_equal(sample.payloads["volume"].data, ref)
    np.testing.assert_allclose(sample.payloads["volume"].descriptor["affine"], ref_affine,
                               atol=1e-4)
    [excluded] = sample.meta["excluded_slices"]
    assert excluded["sop_instance_uid"] == tilted[:-4]
    assert "ImageOrientationPatient" in excluded["reason"]


@pytest.mark.parametrize("name, match", [
    ("truncated", "cannot decode DICOM pixel data"),
    ("missing-file", "missing slice file"),
    ("bad-row", f"line {fx.bad_row_line()} of this series is malformed"),
])
def test_broken_series_are_quarantined_with_a_reason(root, name, match):
    with pytest.raises(RecordError, match=match):
        _load(root, name)


def test_study_labels_and_the_acute_and_chronic_choice(root):
    with pytest.raises(Filtered, match="indeterminate"):
        _load(root, "indeterminate")
    assert _load(root, "acute-chronic")[0].classes == ["Acute and Chronic PE"]
    assert _load(root, "acute-chronic", acute_and_chronic="acute")[0].classes == ["Acute PE"]
    assert "Acute and Chronic PE" not in get_source("rspect", acute_and_chronic="acute") \
        .label_classes()
    src = RSPECT()
    base = {c: 0 for c in fx.STUDY_COLUMNS}
    with pytest.raises(RecordError, match="exclusive"):
        src.study_class({**base, "chronic_pe": 1, "acute_and_chronic_pe": 1})
    with pytest.raises(RecordError, match="contradictory"):
        src.study_class({**base, "negative_exam_for_pe": 1, "chronic_pe": 1})
    assert src.study_class(base) == "Acute PE"


def test_inconsistent_study_rows_quarantine_the_series(tmp_path):
    spec = fx.BY_NAME["no-pe"]
    fx.write_series(tmp_path, spec)
    rows = fx.csv_rows(spec)
    rows[2]["chronic_pe"] = "1"
    fx.write_csv(tmp_path / "train.csv", rows)
    [rec] = RSPECT().list_records(tmp_path)
    with pytest.raises(RecordError, match="other study labels \\(chronic_pe\\)"):
        list(RSPECT().load(rec, tmp_path))


def test_a_series_is_filled_in_place(tmp_path):
    """Peak Python/numpy memory of loading a 40-slice series: its voxels plus about one
    slice's decoding (no list of datasets, no stacking copy, no reorientation copy)."""
    spec = fx.SeriesSpec("long", "CT_small.dcm", 40, fx.AXIAL_FEET_FIRST,
                         labels=(("negative_exam_for_pe", 1),))
    fx.write_series(tmp_path, spec)
    fx.write_csv(tmp_path / "train.csv", fx.csv_rows(spec))
    [rec] = RSPECT().list_records(tmp_path)
    src = RSPECT()
    list(src.load(rec, tmp_path))  # warm caches (pydicom dictionaries, imports)
    tracemalloc.start()
    [sample] = list(src.load(rec, tmp_path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    voxels = sample.payloads["volume"].data.nbytes
    one_slice = 128 * 128 * 8  # the int64 rescale of one slice
    assert voxels == 40 * 128 * 128 * 2
    assert peak < voxels + 4 * one_slice + (256 << 10), (peak, voxels)


def _header(i: int, z: float, orientation=fx.AXIAL, rows: int = 4) -> SliceHeader:
    return SliceHeader(index=i, position=(0.0, 0.0, z), orientation=orientation,
                       spacing=(0.5, 0.5), rows=rows, columns=4, slope=1.0, intercept=-1024.0)


@pytest.mark.parametrize("zs, rows, kind", [
    ([0.0, 1.0, 1.0, 2.0], [4, 4, 4, 4], "duplicate"),
    ([0.0, 1.0, 2.3, 3.0, 4.0], [4] * 5, "irregular"),
    ([0.0, 1.0, 2.0, 3.0], [4, 4, 8, 4], "size"),
    ([0.0, 1.0, 2.0, 4.0, 5.0], [4] * 5, "gap"),
])
def test_series_that_are_not_one_grid_are_named(zs, rows, kind):
    headers = [_header(i, z, rows=r) for i, (z, r) in enumerate(zip(zs, rows, strict=True))]
    plan = plan_series(headers, [f"s{i}.dcm" for i in range(len(zs))])
    assert [p.kind for p in plan.problems] == [kind]
    with pytest.raises(RecordError):
        fill_volume(plan, [], [])


def test_float_noise_in_the_orientation_is_one_orientation():
    noisy = tuple(v + 3e-6 for v in fx.AXIAL)
    headers = [_header(0, 0.0), _header(1, 1.0, noisy), _header(2, 2.0, noisy)]
    plan = plan_series(headers, ["a", "b", "c"])
    assert plan.excluded == [] and plan.problems == [] and plan.order == [0, 1, 2]
    assert plan.slice_spacing_mm == pytest.approx(1.0)
