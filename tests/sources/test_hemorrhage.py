"""CT-ICH: per-slice HU volumes against nibabel, labels against the CSV read with pandas."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from medshard.schemas import BadRow, Filtered, RecordError
from medshard.sources.ct import hemorrhage_fixture as demo
from medshard.sources.ct.hemorrhage import DIAGNOSIS_CSV, RELEASE_DIR, Hemorrhage
from medshard.sources.splits import hash_split


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("ctich")
    demo.write_fixture(r)
    return r


def _records(root):
    return {r.record_id: r for r in Hemorrhage().list_records(root) if not isinstance(r, BadRow)}


def _sample(root, rid):
    [s] = list(Hemorrhage().load(_records(root)[rid], root))
    return s


def test_labels_follow_no_hemorrhage_and_keep_every_column(root):
    csv = pd.read_csv(root / DIAGNOSIS_CSV)
    recs = _records(root)
    assert len(recs) == len(csv)
    for row in csv.itertuples(index=False):
        rid = f"{row.PatientNumber:03d}_s{row.SliceNumber:03d}"
        rec = recs[rid]
        assert rec.subject_id == f"{row.PatientNumber:03d}"
        for col in csv.columns[2:]:
            assert rec.source_labels[col] == getattr(row, col)
        if row.PatientNumber in (demo.MISSING_PATIENT, demo.UNRELEASED_PATIENT) or (
                row.PatientNumber == demo.TRUNCATED_PATIENT and row.SliceNumber > 1):
            continue
        sample = _sample(root, rid)
        assert sample.classes == (["No Hemorrhage"] if row.No_Hemorrhage == 1
                                  else ["Has Hemorrhage"])
        assert sample.meta["windows"]["brain"] == {"level": 40.0, "width": 120.0}
        assert sample.meta["label_conflict"] is False


@pytest.mark.parametrize("rid", ["049_s001", "050_s003", "052_s004"])
def test_slice_is_the_nibabel_slice_in_hu_with_its_position(root, rid):
    sample = _sample(root, rid)
    patient, k = rid.split("_s")
    img = nib.load(root / "ct_scans" / f"{patient}.nii")
    full = nib.as_closest_canonical(img)
    # where slice k lies in the canonical volume: the world z of stored slice k - 1
    world = img.affine @ [0, 0, int(k) - 1, 1]
    ras_index = np.linalg.solve(full.affine, world)
    axis = int(np.argmax(np.abs(np.linalg.inv(full.affine[:3, :3]) @ img.affine[:3, 2])))
    idx = int(round(ras_index[axis]))
    want = np.take(np.asanyarray(full.dataobj), [idx], axis=axis)
    vol = sample.payloads["volume"]
    np.testing.assert_array_equal(vol.data, want)
    assert vol.data.dtype == np.int16 and vol.descriptor["units"] == "HU"
    assert vol.descriptor["orientation"] == "RAS"
    # the one-slice affine puts voxel (0, 0, 0) where the full canonical volume has it
    origin_index = [0, 0, 0]
    origin_index[axis] = idx
    np.testing.assert_allclose(np.array(vol.descriptor["affine"])[:3, 3],
                               (full.affine @ [*origin_index, 1])[:3], atol=1e-6)
    mask = nib.as_closest_canonical(nib.load(root / "masks" / f"{patient}.nii"))
    np.testing.assert_array_equal(sample.payloads["segmentation"].data,
                                  np.take(np.asanyarray(mask.dataobj), [idx], axis=axis))


def test_split_is_by_patient_hash(root):
    recs = _records(root).values()
    assert all(r.split is None for r in recs)  # no official split: the pipeline hashes
    by_patient = {}
    for r in recs:
        by_patient.setdefault(r.subject_id, set()).add(
            hash_split("hemorrhage", r.subject_id, {"train": 0.8, "test": 0.2}))
    assert all(len(s) == 1 for s in by_patient.values())


def test_broken_records_and_rows(root, tmp_path):
    recs = _records(root)
    with pytest.raises(RecordError, match="missing CT"):
        list(Hemorrhage().load(recs[f"{demo.MISSING_PATIENT:03d}_s001"], root))
    with pytest.raises(Filtered, match="no CT released"):
        list(Hemorrhage().load(recs[f"{demo.UNRELEASED_PATIENT:03d}_s001"], root))
    with pytest.raises(RecordError, match="shorter than"):
        list(Hemorrhage().load(recs[f"{demo.TRUNCATED_PATIENT:03d}_s002"], root))
    assert _sample(root, f"{demo.TRUNCATED_PATIENT:03d}_s001")  # the intact first slice
    mutated = tmp_path / "m"
    demo.write_fixture(mutated)
    expect = demo.malformed_row(mutated, tmp_path / "outside")
    bad = {f"{b.file}:{b.line}" for b in Hemorrhage().list_records(mutated)
           if isinstance(b, BadRow)}
    assert bad == set(expect.quarantined)


def test_release_folder_layout_and_no_phi(root, tmp_path):
    import shutil

    nested = tmp_path / "n"
    shutil.copytree(root, nested / RELEASE_DIR)
    recs = {r.record_id: r for r in Hemorrhage().list_records(nested)}
    assert recs["049_s001"].files[0] == f"{RELEASE_DIR}/ct_scans/049.nii"
    sample = _sample(root, "049_s001")
    assert demo.PHI_NAME not in repr(sample.meta) + repr(sample.source_labels)


def _write_mirror(root, mirror):
    """The Kaggle mirror's layout from the fixture's NIfTIs: brain/bone-windowed JPEGs."""
    import shutil

    from PIL import Image

    for patient in (49, 50):
        img = nib.load(root / "ct_scans" / f"{patient:03d}.nii")
        vol = np.asanyarray(img.dataobj).astype(np.float64)
        for window, (level, width) in {"brain": (40, 120), "bone": (700, 3200)}.items():
            out = mirror / "Patients_CT" / f"{patient:03d}" / window
            out.mkdir(parents=True)
            for k in range(vol.shape[2]):
                if patient == 50 and window == "bone" and k == 0:
                    continue  # a slice with its brain JPEG only
                px = np.clip((vol[:, :, k] - (level - width / 2)) / width * 255, 0, 255)
                Image.fromarray(px.astype(np.uint8).T).save(out / f"{k + 1}.jpg", quality=95)
    csv = pd.read_csv(root / DIAGNOSIS_CSV)
    csv[csv.PatientNumber.isin([49, 50])].to_csv(mirror / "hemorrhage_diagnosis.csv", index=False)
    shutil.copy(root / "patient_demographics.csv", mirror)


def test_kaggle_mirror_keeps_both_jpegs_and_says_which_layout(root, tmp_path):
    mirror = tmp_path / "kaggle"
    _write_mirror(root, mirror)
    src = Hemorrhage()
    recs = {r.record_id: r for r in src.list_records(mirror)}
    assert len(recs) == 8 and src.label_files(mirror) == ["hemorrhage_diagnosis.csv"]
    [s] = src.load(recs["049_s003"], mirror)
    brain = (mirror / "Patients_CT" / "049" / "brain" / "3.jpg").read_bytes()
    assert s.payloads["brain"].data == brain and s.payloads["brain"].kind == "image"
    assert s.payloads["bone"].descriptor["window_center"] == [700.0]
    assert s.meta["layout"] == "kaggle-jpg" and s.classes == ["Has Hemorrhage"]
    assert "volume" not in s.payloads
    [only_brain] = src.load(recs["050_s001"], mirror)
    assert set(only_brain.payloads) == {"brain"}
    assert _sample(root, "049_s003").meta["layout"] == "physionet-nifti"
