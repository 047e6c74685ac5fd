"""CheXpert adapter over a miniature CheXpert-v1.0-small (real CR pixels from pydicom-data)."""

from __future__ import annotations

import shutil

import pytest

from medshard.sources import get_source
from medshard.sources.cxr.chexpert import OBSERVATIONS


def test_labels_are_kept_verbatim_including_uncertainty(demo_raw):
    recs = {r.record_id: r for r in get_source("chexpert").list_records(demo_raw / "chexpert")}
    r = recs["patient00002_study1_view1_frontal"]
    assert set(r.source_labels) == set(OBSERVATIONS)
    assert r.source_labels["Cardiomegaly"] == "1.0"  # the cells as written, as text
    assert r.source_labels["Edema"] == "-1.0"
    assert r.source_labels["Pleural Effusion"] == "0.0"
    assert r.source_labels["Fracture"] == ""  # blank: not mentioned
    assert r.meta["view"] == "Frontal" and r.meta["ap_pa"] == "PA"


@pytest.mark.parametrize(("policy", "expected"), [
    ("negative", ["Cardiomegaly"]),
    ("positive", ["Cardiomegaly", "Edema"]),
])
def test_uncertainty_policy(demo_raw, policy, expected):
    src = get_source("chexpert", uncertain=policy)
    r = next(x for x in src.list_records(demo_raw / "chexpert")
             if x.record_id == "patient00002_study1_view1_frontal")
    assert next(src.load(r, demo_raw / "chexpert")).classes == expected


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="uncertain"):
        get_source("chexpert", uncertain="maybe")


def test_valid_is_test_and_no_patient_in_two_splits(demo_raw):
    recs = list(get_source("chexpert").list_records(demo_raw / "chexpert"))
    assert {r.split for r in recs if r.subject_id.startswith("patient645")} == {"test"}
    assert {r.split for r in recs if not r.subject_id.startswith("patient645")} <= {"train", "val"}
    splits: dict[str, set] = {}
    for r in recs:
        splits.setdefault(r.subject_id, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())


def test_jpeg_bytes_are_kept_unchanged(demo_raw):
    root = demo_raw / "chexpert"
    src = get_source("chexpert")
    rec = next(iter(src.list_records(root)))
    sample = next(src.load(rec, root))
    assert sample.payloads["image"].data == (root / rec.files[0]).read_bytes()


def test_release_folder_itself_as_root(demo_raw, tmp_path):
    root = tmp_path / "CheXpert-v1.0-small"
    shutil.copytree(demo_raw / "chexpert" / "CheXpert-v1.0-small", root)
    src = get_source("chexpert")
    recs = list(src.list_records(root))
    assert len(recs) == 10
    assert (root / recs[0].files[0]).is_file()
    assert next(src.load(recs[0], root)).payloads["image"].data[:2] == b"\xff\xd8"
