"""CBIS-DDSM: path resolution, masks aligned with their full images, labels, split.

Alignment is checked with pydicom alone: the mask stored in the shard equals the mask
file's pixels, has the full image's shape, its outline's bounding box lies inside the
image, and the release's crop is exactly the full image cut to that box.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas import BadRow, Filtered
from medshard.sources.mammo.cbis_ddsm import CBISDDSM, SLUG, parse_row, series_key
from medshard.sources.mammo.cbis_ddsm_fixture import record_id, write_raw

P1 = record_id("P_00001", "LEFT", "mass")  # MLO: crop and mask in one series, crop first
P13 = record_id("P_00013", "RIGHT", "calc")  # a trailing newline in a ROI path cell
P4 = record_id("P_00004", "RIGHT", "mass")  # BI-RADS 0


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / SLUG
    write_raw(root)
    return root


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    run_build(BuildConfig(sources=[SLUG], data_root=raw.parent, out=out, progress=False))
    return out


def _records(root: Path, **options) -> dict:
    return {r.record_id: r for r in CBISDDSM(**options).list_records(root)
            if not isinstance(r, BadRow)}


def _members(out: Path) -> dict[str, bytes]:
    manifest = json.loads((out / "manifest.json").read_text())
    members: dict[str, bytes] = {}
    for sh in manifest["shards"]:
        if sh["source"] == SLUG:
            with tarfile.open(out / sh["path"]) as tf:
                members.update({m.name: tf.extractfile(m).read() for m in tf if m.isfile()})
    return members


def _pydicom_pixels(path: Path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("rid", [P1, P13])
def test_roi_mask_is_aligned_with_its_full_image(built, raw, rid):
    members = _members(built)
    key = f"{SLUG}_{rid}"
    meta = json.loads(members[f"{key}.json"])
    rec = _records(raw)[rid]
    for view in rec.meta["views"]:
        role = view["role"]
        full = _pydicom_pixels(raw / view["image"][0])
        # independently: the ROI file with the full image's size is the mask, the other the crop
        rois = {rel: _pydicom_pixels(raw / rel) for rel in view["roi"]}
        (mask_rel,) = [r for r, px in rois.items() if px.shape == full.shape]
        expected_mask = rois[mask_rel]
        with Image.open(io.BytesIO(members[f"{key}.{role}_mask.png"])) as im:
            stored = np.asarray(im)
        np.testing.assert_array_equal(stored, expected_mask)
        assert stored.shape == full.shape
        rows, cols = np.nonzero(stored)
        assert rows.size and 0 <= rows.min() and rows.max() < full.shape[0]
        assert 0 <= cols.min() and cols.max() < full.shape[1]
        box = full[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        (crop,) = [px for r, px in rois.items() if r != mask_rel]
        np.testing.assert_array_equal(crop, box)  # the release's crop is the box of the mask
        desc = meta["payloads"][f"{role}_mask"]
        assert desc["annotates"] == role and desc["values"] == [0, 255]
        assert (desc["height"], desc["width"]) == full.shape
        assert meta["payloads"][role]["laterality"] == rec.meta["laterality"]
        assert meta["payloads"][role]["view"] == role.upper()


def test_crop_and_mask_in_one_series_are_told_apart(raw):
    mlo = next(v for v in _records(raw)[P1].meta["views"] if v["role"] == "mlo")
    assert len(mlo["roi"]) == 2 and len({str(Path(r).parent) for r in mlo["roi"]}) == 1
    (sample,) = CBISDDSM().load(_records(raw)[P1], raw)
    assert sample.payloads["mlo_mask"].data.shape == sample.payloads["mlo"].data.shape


def test_labels_highest_assessment_and_birads_zero(raw):
    (sample,) = CBISDDSM().load(_records(raw)[P1], raw)
    assert sample.classes == ["BI-RADS 4"]
    assert sample.source_labels == {"assessment": [4, 4], "pathology": ["MALIGNANT"] * 2}
    assert sample.meta["rows"][0]["mass_shape"] == "IRREGULAR"
    assert sample.meta["rows"][0]["calc_type"] is None
    with pytest.raises(Filtered, match="BI-RADS 0"):
        list(CBISDDSM().load(_records(raw)[P4], raw))
    (kept,) = CBISDDSM(birads_zero="keep").load(_records(raw)[P4], raw)
    assert kept.classes == ["BI-RADS 0"]
    assert "BI-RADS 0" not in CBISDDSM().label_classes()
    assert "BI-RADS 0" in CBISDDSM(birads_zero="keep").label_classes()
    rec = _records(raw)[P1]
    raised = rec.model_copy(update={"source_labels": {**rec.source_labels, "assessment": [3, 5]}})
    (top,) = CBISDDSM().load(raised, raw)
    assert top.classes == ["BI-RADS 5"]


def test_official_split_and_patient_val(raw):
    records = _records(raw)
    assert records[record_id("P_00016", "LEFT", "mass")].split == "test"
    assert records[P13].split == "val"  # keyed patient hash over train
    assert records[P1].split == "train"
    assert {r.split for r in _records(raw, val_fraction=0.0).values()} == {"train", "test"}


def _files(root: Path) -> dict[str, list[str]]:
    return {rid: sorted(Path(f).name for f in r.files) for rid, r in _records(root).items()}


def test_folders_found_without_metadata_csv(raw, tmp_path):
    root = tmp_path / SLUG
    shutil.copytree(raw, root)
    (root / "metadata.csv").unlink()
    with_meta, without = _records(raw), _records(root)
    assert {k: r.files for k, r in without.items()} == {k: r.files for k, r in with_meta.items()}
    (sample,) = CBISDDSM().load(without[P1], root)
    assert set(sample.payloads) == {"cc", "mlo", "cc_mask", "mlo_mask"}


def test_medshard_tcia_layout_is_read_at_the_csv_paths(raw, tmp_path):
    """`medshard download` writes <PatientID>/<Study UID>/<Series UID>/: the CSV paths."""
    import csv

    root = tmp_path / SLUG
    root.mkdir()
    for f in raw.glob("*_set.csv"):
        shutil.copy(f, root / f.name)
    with open(raw / "metadata.csv", newline="") as f:
        for row in csv.DictReader(f):
            src = raw / row["File Location"].removeprefix("./")
            dst = root / row["Subject ID"] / row["Study UID"] / row["Series UID"]
            shutil.copytree(src, dst)
    rec = _records(root)[P1]
    assert all(not f.startswith("CBIS-DDSM/") for f in rec.files)
    (sample,) = CBISDDSM().load(rec, root)
    assert sample.classes == ["BI-RADS 4"] and len(sample.payloads) == 4


def test_path_cells_parse_with_trailing_newline():
    assert series_key("Calc-Test_P_1_LEFT_CC_1/1.2.3/4.5.6/000001.dcm\n") == (
        "Calc-Test_P_1_LEFT_CC_1", "1.2.3", "4.5.6")
    with pytest.raises(ValueError):
        series_key("../1.2/1.3/000000.dcm")
    row = {"patient_id": "P_00001", "breast density": "3", "left or right breast": "LEFT",
           "image view": "CC", "abnormality id": "1", "abnormality type": "calcification",
           "calc type": "AMORPHOUS", "calc distribution": "CLUSTERED", "assessment": "4",
           "pathology": "BENIGN", "subtlety": "3",
           "image file path": "A/1.2/1.3/000000.dcm",
           "cropped image file path": "A_1/1.2/1.4/000000.dcm",
           "ROI mask file path": "A_1/1.2/1.4/000001.dcm\n"}
    parsed = parse_row(row, "calc")
    assert parsed["breast_density"] == 3 and parsed["calc_type"] == "AMORPHOUS"
    with pytest.raises(ValueError, match="pathology"):
        parse_row({**row, "pathology": "UNSURE"}, "calc")
