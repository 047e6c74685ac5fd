"""Kermany OCT over its miniature: names parsed for the patient, official test, val by patient."""

from __future__ import annotations

import shutil

import pytest

from medshard.sources import get_source
from medshard.sources.oct import kermany_fixture as fx
from medshard.sources.oct.kermany import parse_name


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fx.write_fixture(tmp_path_factory.mktemp("oct") / "kermany-oct")


def _records(src, root):
    return {r.record_id: r for r in src.list_records(root) if hasattr(r, "record_id")}


def test_name_gives_disease_patient_and_number():
    assert parse_name("CNV-1016042-1.jpeg") == ("CNV", "1016042", 1)
    assert parse_name("drusen-95633-12.jpg") == ("DRUSEN", "95633", 12)
    with pytest.raises(ValueError, match="not <DISEASE>"):
        parse_name("CNV_1016042_1.jpeg")


def test_subject_is_the_patient_across_diseases(root):
    recs = _records(get_source("kermany-oct"), root)
    r = recs["train_DME-1001-3"]
    assert r.subject_id == "1001" and r.source_labels == {"class": "DME"}
    assert r.files == ["OCT2017/train/DME/DME-1001-3.jpeg"]
    one = [x for x in recs.values() if x.subject_id == "1001"]
    assert len(one) == 3 and len({x.split for x in one}) == 1


def test_test_folder_is_test_and_val_is_carved_by_patient(root):
    recs = _records(get_source("kermany-oct", val_fraction=0.5), root)
    assert {r.split for r in recs.values() if r.meta["release_folder"] == "test"} == {"test"}
    train_pool = [r for r in recs.values() if r.meta["release_folder"] != "test"]
    assert {r.split for r in train_pool} == {"train", "val"}
    by_patient: dict[str, set] = {}
    for r in recs.values():
        by_patient.setdefault(r.subject_id, set()).add(r.split)
    assert all(len(s) == 1 for s in by_patient.values())
    assert recs["val_NORMAL-1010-1"].split in ("train", "val")  # Kaggle's val/ joins the pool
    none = _records(get_source("kermany-oct", val_fraction=0.0), root)
    assert {r.split for r in none.values() if r.meta["release_folder"] != "test"} == {"train"}


@pytest.mark.parametrize("layout", ["ZhangLabData/CellData/OCT", "OCT", ""])
def test_mendeley_and_flat_layouts(root, tmp_path, layout):
    dst = tmp_path / "r" / layout if layout else tmp_path / "r"
    shutil.copytree(root / "OCT2017", dst)
    recs = _records(get_source("kermany-oct"), tmp_path / "r")
    assert "test_CNV-2001-1" in recs


def test_jpeg_bytes_are_kept(root):
    src = get_source("kermany-oct")
    r = _records(src, root)["test_CNV-2001-1"]
    sample = next(src.load(r, root))
    assert sample.payloads["image"].data == (root / r.files[0]).read_bytes()
    assert sample.classes == ["CNV"]
