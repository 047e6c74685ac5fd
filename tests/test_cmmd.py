"""CMMD: table rows joined to images by header laterality, views, labels, patient split."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from medshard.loaders import ShardDataset
from medshard.pipeline.build import BuildConfig, run_build
from medshard.schemas import BadRow, Filtered
from medshard.sources.mammo.cmmd import CMMD, SLUG
from medshard.sources.mammo.cmmd_fixture import ROWS, series_folder, write_raw


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / SLUG
    write_raw(root)
    return root


def _records(root: Path, **options) -> dict:
    return {r.record_id: r for r in CMMD(**options).list_records(root)
            if not isinstance(r, BadRow)}


def _header(path: Path) -> tuple[str, str]:
    """(laterality, view) read with pydicom: ViewPosition or the View Code Sequence code."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    view = ds.get("ViewPosition")
    if not view:
        view = {"R-10242": "CC", "R-10226": "MLO"}[ds.ViewCodeSequence[0].CodeValue]
    return ds.ImageLaterality, view


def test_one_record_per_table_row_joined_by_header_laterality(raw):
    records = _records(raw)
    assert sorted(records) == sorted(f"{r[0]}_{r[1]}" for r in ROWS)
    for rid in ("D1-0003_L", "D1-0003_R", "D1-0014_L", "D1-0001_R"):
        rec = records[rid]
        side = rid[-1]
        got = [(_header(raw / v["file"]), v["role"]) for v in rec.meta["views"]]
        assert [h for h, _ in got] == [(side, "CC"), (side, "MLO")]
        assert [role for _, role in got] == ["cc", "mlo"]
    # both breasts of D1-0003 come from one series of four files
    folder = series_folder("D1-0003")
    assert {Path(f).parent.as_posix() for f in records["D1-0003_L"].files} == {folder}
    assert not set(records["D1-0003_L"].files) & set(records["D1-0003_R"].files)


def test_labels_subtype_and_age(raw):
    src = CMMD()
    (s,) = src.load(_records(raw)["D2-0007_R"], raw)
    assert s.classes == ["Malignant"]
    assert s.source_labels == {"classification": "Malignant", "subtype": "Luminal B",
                               "abnormality": "both", "number": 1}
    assert s.meta["age"] == 58.0
    (old,) = src.load(_records(raw)["D1-0014_L"], raw)  # 93 in the table: reported as 90
    assert old.meta["age"] == 90.0 and old.classes == ["Malignant"]
    assert {p.descriptor["view"] for p in old.payloads.values()} == {"CC", "MLO"}


def test_views_decoded_as_pydicom_does(raw):
    (s,) = CMMD().load(_records(raw)["D1-0003_R"], raw)
    for role, payload in s.payloads.items():
        rel = next(v["file"] for v in _records(raw)["D1-0003_R"].meta["views"]
                   if v["role"] == role)
        ds = pydicom.dcmread(raw / rel)
        top = 2 ** int(ds.BitsStored) - 1
        expected = top - np.asarray(apply_modality_lut(ds.pixel_array, ds)).astype(np.int64)
        np.testing.assert_array_equal(payload.data.astype(np.int64), expected)
        assert payload.descriptor["laterality"] == "R"


def test_breast_with_one_view_is_filtered(raw):
    with pytest.raises(Filtered):
        list(CMMD().load(_records(raw)["D1-0002_L"], raw))


def _hash_split(patient: str, test: float, val: float) -> str:
    mac = hmac.new(b"medshard-split:cmmd", patient.encode(), hashlib.sha256)
    u = int.from_bytes(mac.digest()[:8], "big") / 2**64
    train = (1 - test) * (1 - val)
    return "train" if u < train else "val" if u < train + (1 - test) * val else "test"


@pytest.mark.parametrize(("test", "val"), [(0.25, 0.1), (0.5, 0.0), (0.0, 0.3)])
def test_split_is_a_keyed_hash_of_the_patient(raw, test, val):
    records = _records(raw, test_fraction=test, val_fraction=val)
    for rec in records.values():
        assert rec.subject_id == rec.record_id[:-2]
        assert rec.split == _hash_split(rec.subject_id, test, val)
    assert records["D1-0003_L"].split == records["D1-0003_R"].split


def test_loader_returns_both_views(raw, tmp_path):
    out = tmp_path / "out"
    run_build(BuildConfig(sources=[SLUG], data_root=raw.parent, out=out, progress=False))
    samples = {s["key"]: s for s in ShardDataset(str(out), split=None, sources=[SLUG],
                                                  shuffle=False)}
    s = samples[f"{SLUG}_D1-0003_L"]
    assert s["cc"].shape[0] == 1 and s["mlo"].shape[0] == 1
    assert s["cc"].shape != s["mlo"].shape
    assert {r["role"] for r in s["meta"]["views"]} == {"cc", "mlo"}
