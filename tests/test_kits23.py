"""KiTS23: CT volumes from nibabel's real NIfTI images, checked voxel for voxel against nibabel.

The reference is nibabel itself: `as_closest_canonical` of the raw file gives the RAS
array and affine the source must produce, before and after the shard round trip.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest
from nibabel.affines import voxel_sizes

from medshard.schemas import Filtered, RecordError
from medshard.sources.ct import kits23_fixture as demo
from medshard.sources.ct.kits23 import SEGMENTATION_LABELS, KiTS23
from medshard.sources.registry import get_source

WRITTEN = ["case_00000", "case_00001", "case_00002", "case_00003"]


@pytest.fixture(scope="module")
def kits_root(tmp_path_factory) -> Path:
    """Repository-root layout: ROOT/dataset/kits23.json + case folders."""
    root = tmp_path_factory.mktemp("kits23")
    demo.write_raw(root)
    return root


def _records(root: Path) -> dict:
    return {r.record_id: r for r in KiTS23().list_records(root)}


def _load(root: Path, case_id: str):
    [sample] = list(KiTS23().load(_records(root)[case_id], root))
    return sample


def _canonical(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(path))
    return np.asanyarray(img.dataobj), img.affine


def test_registry_and_both_root_layouts(kits_root):
    assert isinstance(get_source("kits23"), KiTS23)
    from_repo = _records(kits_root)
    from_dataset = _records(kits_root / "dataset")
    assert list(from_repo) == list(from_dataset) == WRITTEN + ["case_00004"]
    assert from_repo["case_00000"].files == [
        "dataset/case_00000/imaging.nii.gz", "dataset/case_00000/segmentation.nii.gz"
    ]
    assert from_dataset["case_00000"].files[0] == "case_00000/imaging.nii.gz"
    assert all(r.split is None for r in from_repo.values())  # no official labelled split
    # shard planning sees the uncompressed size: int16 voxels + a uint8 mask
    rec = from_repo["case_00000"]
    assert KiTS23().estimate_output_bytes(rec) == 128 * 96 * 24 * 3


@pytest.mark.parametrize("case_id", WRITTEN)
def test_volume_and_mask_match_nibabel_canonical_voxel_for_voxel(kits_root, case_id):
    sample = _load(kits_root, case_id)
    case = kits_root / "dataset" / case_id
    ref, ref_affine = _canonical(case / "imaging.nii.gz")
    vol = sample.payloads["volume"]
    assert vol.kind == "volume"
    assert vol.data.dtype == ref.dtype.newbyteorder("=") and vol.data.dtype.isnative
    np.testing.assert_array_equal(vol.data, ref)
    desc = vol.descriptor
    np.testing.assert_allclose(desc["affine"], ref_affine, rtol=0, atol=1e-9)
    assert desc["orientation"] == "RAS" == "".join(nib.aff2axcodes(np.array(desc["affine"])))
    assert desc["shape"] == list(ref.shape)
    np.testing.assert_allclose(desc["spacing_mm"], voxel_sizes(ref_affine))
    assert desc["dtype"] == "int16" and desc["units"] == "HU"
    assert "segmentation_member" not in desc

    seg_ref, seg_affine = _canonical(case / "segmentation.nii.gz")
    mask = sample.payloads["segmentation"]
    assert mask.kind == "array" and mask.data.dtype == np.uint8
    assert mask.descriptor == {"annotates": "volume", "label_names": SEGMENTATION_LABELS}
    np.testing.assert_array_equal(mask.data, seg_ref)
    np.testing.assert_allclose(seg_affine, ref_affine)


def test_non_ras_files_land_on_the_same_ras_voxels(kits_root):
    """case_00002 is case_00000's volume stored LPS; case_00003 example4d's 2nd volume, I-P-L."""
    ras = _load(kits_root, "case_00000")
    lps = _load(kits_root, "case_00002")
    assert ras.meta["source_orientation"] == "LAS" and lps.meta["source_orientation"] == "LPS"
    np.testing.assert_array_equal(lps.payloads["volume"].data, ras.payloads["volume"].data)
    np.testing.assert_array_equal(
        lps.payloads["segmentation"].data, ras.payloads["segmentation"].data
    )
    np.testing.assert_allclose(
        lps.payloads["volume"].descriptor["affine"], ras.payloads["volume"].descriptor["affine"],
        atol=1e-9,
    )

    ipl = _load(kits_root, "case_00003")
    assert ipl.meta["source_orientation"] == "IPL"
    original = nib.load(demo.nibabel_image_path("example4d.nii.gz"))
    vol1 = nib.Nifti1Image(np.asanyarray(original.dataobj)[..., 1], original.affine)
    ref = nib.as_closest_canonical(vol1)
    np.testing.assert_array_equal(ipl.payloads["volume"].data, np.asanyarray(ref.dataobj))
    # the file stores its affine in float32: equal to 0.1 µm
    np.testing.assert_allclose(ipl.payloads["volume"].descriptor["affine"], ref.affine, atol=1e-4)
    # a world point maps to the same voxel value through either file's affine
    world = np.array([10.0, -20.0, 15.0, 1.0])
    ijk = np.rint(np.linalg.inv(ref.affine) @ world)[:3].astype(int)
    ijk_raw = np.rint(np.linalg.inv(original.affine) @ world)[:3].astype(int)
    assert ipl.payloads["volume"].data[tuple(ijk)] == original.dataobj[(*ijk_raw, 1)]


def test_big_endian_input_becomes_native_without_changing_values(kits_root):
    sample = _load(kits_root, "case_00001")  # nibabel's anatomical.nii is big-endian int16
    assert nib.load(kits_root / "dataset/case_00001/imaging.nii.gz").get_data_dtype() == ">i2"
    assert sample.payloads["volume"].data.dtype == np.dtype("<i2")


def test_labels_and_allow_listed_clinical_metadata(kits_root):
    malignant, benign = _load(kits_root, "case_00000"), _load(kits_root, "case_00001")
    assert malignant.classes == ["malignant"] and malignant.source_labels == {"malignant": True}
    assert benign.classes == ["benign"] and benign.source_labels == {"malignant": False}
    assert malignant.task == "classification" and malignant.key_suffix is None
    meta = malignant.meta
    assert meta["age_at_nephrectomy"] == 49 and meta["gender"] == "female"
    assert meta["tumor_histologic_subtype"] == "clear_cell_rcc"
    assert meta["pathology_t_stage"] == "1a" and meta["segmentation_labels"]["2"] == "tumor"
    for leaked in ("vital_days_after_surgery", "last_preop_egfr", "comorbidities",
                   "vital_status", "estimated_blood_loss", "case_id"):
        assert leaked not in meta
    assert benign.meta["age_at_nephrectomy"] == 90  # 92 in kits23.json: Safe Harbor cap
    with pytest.raises(Filtered, match="malignant is null"):
        list(KiTS23().load(_records(kits_root)["case_00004"], kits_root))


def test_missing_imaging_is_a_record_error_naming_the_fix(kits_root, tmp_path):
    root = tmp_path / "k"
    shutil.copytree(kits_root, root)
    (root / "dataset/case_00000/imaging.nii.gz").unlink()
    with pytest.raises(RecordError, match="kits23_download_data"):
        list(KiTS23().load(_records(root)["case_00000"], root))


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def kits_build(kit):
    """The conformance kit's build (both formats) of the fixture: the miniature plus a case
    whose CT was never downloaded and one whose CT download was cut short."""
    if "kits23" not in kit.fixtures:
        pytest.skip("--sources leaves out kits23")
    return kit.manifest, kit.out, kit.data_root / "kits23"


def test_build_round_trip_keeps_every_voxel_and_quarantines_broken_cases(kits_build):
    manifest, out, root = kits_build
    counts = manifest["sources"]["kits23"]["counts"]
    assert sum(c["listed"] for c in counts.values()) == 7
    assert sum(c["written"] for c in counts.values()) == 4
    assert sum(c["filtered"] for c in counts.values()) == 1
    quarantine = {
        q["record_id"]: q
        for q in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())
        if q["source"] == "kits23"
    }
    missing, truncated = demo.MISSING_CASE, demo.TRUNCATED_CASE
    assert set(quarantine) == {missing, truncated}
    assert quarantine[missing]["stage"] == quarantine[truncated]["stage"] == "load"
    assert "kits23_download_data" in quarantine[missing]["message"]

    seen = set()
    for tar_path in sorted(out.glob("webdataset/kits23/*/*.tar")):
        with tarfile.open(tar_path) as tar:
            names = tar.getnames()
            for name in names:
                if not name.endswith(".json"):
                    continue
                key = name[: -len(".json")]
                meta = json.load(tar.extractfile(name))
                case_id = key.removeprefix("kits23_")
                assert meta["members"] == ["segmentation.npy", "volume.npy"]
                volume = np.load(io.BytesIO(tar.extractfile(f"{key}.volume.npy").read()))
                mask = np.load(io.BytesIO(tar.extractfile(f"{key}.segmentation.npy").read()))
                ref, ref_affine = _canonical(root / "dataset" / case_id / "imaging.nii.gz")
                np.testing.assert_array_equal(volume, ref)
                assert volume.dtype == np.int16
                vol_desc = meta["payloads"]["volume"]
                np.testing.assert_allclose(vol_desc["affine"], ref_affine, atol=1e-9)
                assert meta["payloads"]["volume"]["member"] == "volume.npy"
                assert meta["payloads"]["volume"]["orientation"] == "RAS"
                seg_desc = meta["payloads"]["segmentation"]
                assert seg_desc["kind"] == "array" and seg_desc["annotates"] == "volume"
                assert seg_desc["shape"] == list(volume.shape) and seg_desc["dtype"] == "uint8"
                assert seg_desc["label_names"]["2"] == "tumor"
                seg_ref, _ = _canonical(root / "dataset" / case_id / "segmentation.nii.gz")
                np.testing.assert_array_equal(mask, seg_ref)
                malignant = meta["source_labels"]["malignant"]
                assert meta["labels"] == [
                    "ct.kidney-tumor-malignant" if malignant else "ct.kidney-tumor-benign"
                ]
                assert meta["task"] == "classification" and meta["modality"] == "ct"
                seen.add(case_id)
    assert seen == set(WRITTEN)

    # the parquet shards hold the same bytes
    for pq_path in out.glob("parquet/kits23/*/*.parquet"):
        table = pq.read_table(pq_path, columns=["key", "volume_npy", "json"]).to_pylist()
        for row in table:
            case_id = row["key"].removeprefix("kits23_")
            ref, _ = _canonical(root / "dataset" / case_id / "imaging.nii.gz")
            np.testing.assert_array_equal(np.load(io.BytesIO(row["volume_npy"])), ref)

