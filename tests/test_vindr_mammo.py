"""VinDr-Mammo: one sample per breast with CC and MLO roles, labels, findings, split, pixels.

Expected pixels are computed with pydicom alone (apply_modality_lut, then the MONOCHROME1
mirror at 2**BitsStored - 1), never read back through medshard's own decoder.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut

from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas import BadRow, Filtered, RecordError
from medshard.schemas.vocabulary import load_vocabulary
from medshard.sources.mammo.vindr_mammo import SLUG, VinDrMammo
from medshard.sources.mammo.vindr_mammo_fixture import (
    FINDINGS,
    STUDY,
    image_id,
    record_id,
    write_raw,
)

S1_LEFT = record_id("S1", "L")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / SLUG
    write_raw(root)
    return root


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    run_build(BuildConfig(sources=[SLUG], data_root=raw.parent, out=out,
                          formats=("webdataset", "parquet"), progress=False))
    return out


def _records(root: Path, **options) -> dict:
    return {r.record_id: r for r in VinDrMammo(**options).list_records(root)
            if not isinstance(r, BadRow)}


def _expected(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    top = 2 ** int(ds.BitsStored) - 1
    return top - np.asarray(apply_modality_lut(ds.pixel_array, ds)).astype(np.int64)


def test_a_breast_is_one_record_with_both_views(raw):
    rec = _records(raw)[S1_LEFT]
    assert rec.subject_id == STUDY["S1"]
    assert rec.files == [f"images/{STUDY['S1']}/{image_id('S1', 'L', v)}.dicom"
                         for v in ("CC", "MLO")]
    assert [v["role"] for v in rec.meta["views"]] == ["cc", "mlo"]
    assert rec.source_labels == {"breast_birads": ["BI-RADS 4", "BI-RADS 4"],
                                 "breast_density": ["DENSITY C", "DENSITY C"]}


def test_official_split_and_exam_level_val(raw):
    records = _records(raw)
    assert records[record_id("S3", "L")].split == "test"
    # both breasts of an exam share a split; val comes out of training only
    assert records[record_id("S1", "L")].split == records[record_id("S1", "R")].split
    assert {r.split for r in _records(raw, val_fraction=0.0).values()} == {"train", "test"}
    assert {records[record_id(s, "L")].split for s in ("S1", "S2")} <= {"train", "val"}


def test_sample_has_two_image_roles_descriptors_label_and_findings(raw):
    src = VinDrMammo()
    (sample,) = src.load(_records(raw)[S1_LEFT], raw)
    assert sample.classes == ["BI-RADS 4"]
    assert set(sample.payloads) == {"cc", "mlo"}
    for role, view in (("cc", "CC"), ("mlo", "MLO")):
        p = sample.payloads[role]
        path = raw / "images" / STUDY["S1"] / f"{image_id('S1', 'L', view)}.dicom"
        assert p.kind == "image"
        assert p.descriptor["view"] == view and p.descriptor["laterality"] == "L"
        assert p.descriptor["photometric"] == "MONOCHROME2"
        np.testing.assert_array_equal(p.data.astype(np.int64), _expected(path))
    assert sample.meta["breast_density"] == "DENSITY C"
    boxes = {(f["role"], tuple(f["box_xyxy"])) for f in sample.meta["findings"]}
    assert boxes == {("cc", FINDINGS[("S1", "L", "CC")][0][2]),
                     ("mlo", FINDINGS[("S1", "L", "MLO")][0][2])}
    assert all(f["categories"] == ["Mass"] and f["finding_birads"] == "BI-RADS 4"
               for f in sample.meta["findings"])
    assert [v["role"] for v in sample.meta["views"]] == ["cc", "mlo"]
    assert sample.meta["sex"] == "F"
    # "No Finding" rows are not findings
    (right,) = src.load(_records(raw)[record_id("S1", "R")], raw)
    assert right.meta["findings"] == [] and right.classes == ["BI-RADS 1"]


def test_breast_with_one_view_is_filtered(raw):
    rec = _records(raw)[record_id("S2", "R")]
    with pytest.raises(Filtered, match="both a CC and an MLO"):
        list(VinDrMammo().load(rec, raw))


def test_index_size_that_is_not_the_image_is_refused(raw, tmp_path):
    rec = _records(raw)[S1_LEFT]
    views = [dict(v) for v in rec.meta["views"]]
    views[1]["height"] += 1
    bad = rec.model_copy(update={"meta": {**rec.meta, "views": views}})
    with pytest.raises(RecordError, match="index says"):
        list(VinDrMammo().load(bad, raw))


def test_malformed_finding_row_is_a_bad_row_and_leaves_its_breast_out(raw, tmp_path):
    import shutil

    root = tmp_path / SLUG
    shutil.copytree(raw, root)
    with open(root / "finding_annotations.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            [STUDY["S1"], "x", image_id("S1", "R", "CC"), "R", "CC", 112, 90, "BI-RADS 1",
             "DENSITY C", "['Mass'", "BI-RADS 3", 1, 2, 3, 4, "training"])
    out = list(VinDrMammo().list_records(root))
    (bad,) = [r for r in out if isinstance(r, BadRow)]
    assert bad.file == "finding_annotations.csv"
    ids = {r.record_id for r in out if not isinstance(r, BadRow)}
    assert record_id("S1", "R") not in ids and S1_LEFT in ids


def test_loader_returns_both_views(built, raw):
    vocab = load_vocabulary()
    key = f"{SLUG}_{S1_LEFT}"
    for fmt in ("webdataset", "parquet"):
        samples = {s["key"]: s for s in ShardDataset(str(built), split=None, sources=[SLUG],
                                                      shuffle=False, format=fmt)}
        s = samples[key]
        for role, view in (("cc", "CC"), ("mlo", "MLO")):
            path = raw / "images" / STUDY["S1"] / f"{image_id('S1', 'L', view)}.dicom"
            expected = _expected(path)
            assert s[role].shape == (1, *expected.shape), fmt
            np.testing.assert_array_equal(s[role][0].numpy().astype(np.int64), expected)
            desc = s["meta"]["payloads"][role]
            assert (desc["view"], desc["laterality"]) == (view, "L")
        assert s["labels"][vocab.index["mammo.birads-4"]] == 1
        assert s["labels"].sum() == 1


def test_tar_sample_holds_both_png_views(built):
    manifest = json.loads((built / "manifest.json").read_text())
    tars = [built / sh["path"] for sh in manifest["shards"]
            if sh["source"] == SLUG and sh["format"] == "webdataset"]
    members = {}
    for t in tars:
        with tarfile.open(t) as tf:
            members.update({m.name: tf.extractfile(m).read() for m in tf if m.isfile()})
    key = f"{SLUG}_{S1_LEFT}"
    meta = json.loads(members[f"{key}.json"])
    assert meta["members"] == ["cc.png", "mlo.png"]
    for role in ("cc", "mlo"):
        with Image.open(io.BytesIO(members[f"{key}.{role}.png"])) as im:
            assert im.size == (meta["payloads"][role]["width"], meta["payloads"][role]["height"])
