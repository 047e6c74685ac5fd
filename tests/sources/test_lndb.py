"""LNDb: finding crops checked against SimpleITK, labels against the CSVs read with pandas."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from medshard.schemas import BadRow, RecordError
from medshard.sources.ct import lndb_fixture as demo
from medshard.sources.ct.lndb import LNDb
from medshard.sources.registry import get_source

GOOD = ["LNDb-0001_f1", "LNDb-0001_f2", "LNDb-0001_f3", "LNDb-0002_f1", "LNDb-0002_f2",
        "LNDb-0003_f1"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("lndb")
    demo.write_fixture(r)
    return r


def _records(src, root):
    return {r.record_id: r for r in src.list_records(root) if not isinstance(r, BadRow)}


def _sample(src, root, rid):
    [s] = list(src.load(_records(src, root)[rid], root))
    return s


def _reference_crop(mhd, world, crop_mm, pad):
    """The crop cut from SimpleITK's whole image at TransformPhysicalPointToIndex, as a
    RAS-canonical nibabel image (index order i, j, k; affine from ITK's own transforms)."""
    img = sitk.ReadImage(str(mhd))
    center = np.array(img.TransformPhysicalPointToIndex(world))
    n = np.array([math.ceil(crop_mm / s) for s in img.GetSpacing()])
    start = center - n // 2
    ijk = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    m = int(n.max())
    padded = np.pad(ijk, m, constant_values=pad)
    crop = padded[tuple(slice(a + m, a + m + b) for a, b in zip(start, n, strict=True))]
    origin = np.array(img.TransformContinuousIndexToPhysicalPoint([float(v) for v in start]))
    cols = [np.array(img.TransformContinuousIndexToPhysicalPoint(
        [float(v) + (1.0 if a == d else 0.0) for a, v in enumerate(start)])) - origin
        for d in range(3)]
    lps = np.eye(4)
    lps[:3, :3] = np.stack(cols, axis=1)
    lps[:3, 3] = origin
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return nib.as_closest_canonical(nib.Nifti1Image(crop, ras))


@pytest.mark.parametrize("rid", GOOD)
def test_crop_equals_simpleitk_crop_at_the_world_point(root, rid):
    src = LNDb()
    rec = _records(src, root)[rid]
    sample = _sample(src, root, rid)
    ref = _reference_crop(root / rec.files[0], rec.meta["world_lps_mm"], 48.0, -1024)
    vol = sample.payloads["volume"]
    np.testing.assert_array_equal(vol.data, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(vol.descriptor["affine"], ref.affine, atol=1e-6)
    assert vol.descriptor["orientation"] == "RAS" == "".join(nib.aff2axcodes(ref.affine))
    assert vol.descriptor["shape"] == [16, 16, 12]  # ceil(48 / 3), ceil(48 / 4)
    assert vol.descriptor["units"] == "HU" and vol.data.dtype == np.int16


def test_crop_at_the_edge_is_padded_and_a_scan_stored_flipped_is_ras(root):
    src = LNDb()
    edge = _sample(src, root, "LNDb-0001_f2")
    assert edge.meta["padded_voxels"] > 0
    assert (edge.payloads["volume"].data == -1024).sum() >= edge.meta["padded_voxels"]
    flipped = _sample(src, root, "LNDb-0002_f1")
    assert flipped.meta["source_orientation"] != "RAS"
    # another crop size and pad value follow the options
    other = list(LNDb(crop_mm=20.0, pad_value=-2000).load(_records(src, root)["LNDb-0001_f2"],
                                                            root))[0]
    assert other.payloads["volume"].descriptor["shape"] == [7, 7, 5]
    assert (other.payloads["volume"].data == -2000).any()


def test_labels_match_the_findings_csv(root):
    gt = pd.read_csv(root / "trainNodules_gt.csv")
    gt = gt[pd.to_numeric(gt["Nodule"], errors="coerce").notna()]
    src = LNDb()
    recs = _records(src, root)
    for _, row in gt.iterrows():
        rid = f"LNDb-{int(row.LNDbID):04d}_f{int(row.FindingID)}"
        diameter = 2 * (3 * float(row.Volume) / (4 * math.pi)) ** (1 / 3)
        nodule = int(row.Nodule)
        want = "non-nodule" if nodule == 0 else (
            "nodule ≥ 3mm" if diameter >= 3 - 1e-3 else "nodule < 3mm")
        rec = recs[rid]
        assert rec.source_labels["Nodule"] == nodule
        assert rec.source_labels["Volume"] == pytest.approx(float(row.Volume))
        assert rec.meta["world_lps_mm"] == pytest.approx([row.x, row.y, row.z])
        if rid in GOOD:
            assert _sample(src, root, rid).classes == [want]
    # the 3-mm boundary: LNDb's ">= 3 mm" rule, not CLIMB's "<= 3 is small"
    assert _sample(src, root, "LNDb-0002_f1").classes == ["nodule ≥ 3mm"]


def test_official_folds_give_the_split(root):
    folds = pd.read_csv(root / "trainFolds.csv")
    fold_of = {int(v): int(c[4:]) for c in folds.columns
               for v in pd.to_numeric(folds[c], errors="coerce").dropna()}
    for test_fold in (3, 0):
        src = LNDb(test_fold=test_fold, val_fraction=0.0)
        for rec in _records(src, root).values():
            lnd = int(rec.subject_id[5:])
            assert rec.split == ("test" if fold_of[lnd] == test_fold else "train")
    assert not [r for r in LNDb().list_records(root) if isinstance(r, BadRow)]


def test_malformed_rows_are_bad_rows_and_the_listing_goes_on(tmp_path):
    mutated = tmp_path / "lndb"
    demo.write_fixture(mutated)
    expect = demo.malformed_row(mutated, tmp_path / "outside")
    listed = list(LNDb().list_records(mutated))
    bad = {f"{b.file}:{b.line}": b.reason for b in listed if isinstance(b, BadRow)}
    assert set(bad) == set(expect.quarantined)
    for key, fragment in expect.message_has.items():
        assert fragment in bad[key]
    assert len([r for r in listed if not isinstance(r, BadRow)]) == len(demo.FINDINGS)


def test_radiologist_findings_give_one_record_per_row(root):
    rows = pd.read_csv(root / "trainNodules.csv")
    recs = _records(LNDb(findings="radiologist"), root)
    assert len(recs) == len(rows)
    assert "LNDb-0001_r2_f1" in recs and recs["LNDb-0001_r2_f1"].source_labels["RadID"] == [2]


def test_broken_scans_are_record_errors_with_reasons(root):
    src = LNDb()
    recs = _records(src, root)
    for rid, fragment in ((demo.TRUNCATED_FINDING, "shorter than"),
                          (demo.MISSING_FINDING, "missing CT header"),
                          (demo.OUTSIDE_FINDING, "outside the scan")):
        with pytest.raises(RecordError, match=fragment):
            list(src.load(recs[rid], root))


def test_header_free_fields_never_reach_the_sample(root):
    text = (root / "data0" / "LNDb-0002.mhd").read_text()
    assert demo.PHI_NAME in text
    sample = _sample(LNDb(), root, "LNDb-0002_f1")
    assert demo.PHI_NAME not in repr(sample.meta) + repr(sample.source_labels)
    assert isinstance(get_source("lndb"), LNDb)


def test_scan_samples_are_the_whole_ct_with_the_classes_of_its_findings(root):
    src = LNDb(scan_samples=True)
    recs = {r.record_id: r for r in src.list_records(root) if not isinstance(r, BadRow)}
    assert {"LNDb-0001", "LNDb-0002", "LNDb-0003"} <= set(recs)
    [scan] = src.load(recs["LNDb-0002"], root)
    img = sitk.ReadImage(str(root / "data0" / "LNDb-0002.mhd"))
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    ref = nib.as_closest_canonical(nib.Nifti1Image(
        sitk.GetArrayFromImage(img).transpose(2, 1, 0), np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps))
    np.testing.assert_array_equal(scan.payloads["volume"].data, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(scan.payloads["volume"].descriptor["affine"], ref.affine, atol=1e-6)
    assert scan.classes == ["nodule ≥ 3mm", "nodule < 3mm"]
    assert scan.meta["finding_ids"] == ["LNDb-0002_f1", "LNDb-0002_f2"]
    [finding] = src.load(recs["LNDb-0002_f1"], root)
    assert set(scan.meta) == set(finding.meta) and set(scan.source_labels) == set(
        finding.source_labels)
    assert scan.meta["sample_kind"] == "scan" and finding.meta["sample_kind"] == "finding"
