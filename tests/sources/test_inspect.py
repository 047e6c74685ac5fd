"""INSPECT: CLIMB's 5 classes against the label table read with pandas, CTPA volumes
against nibabel, the official split, and EHR tables left alone."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from medshard.schemas import BadRow, Filtered, RecordError
from medshard.sources.ct import inspect_ctpa_fixture as demo
from medshard.sources.ct.inspect_ctpa import INSPECT


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("inspect")
    demo.write_fixture(r)
    return r


def _records(root):
    return {r.record_id: r for r in INSPECT().list_records(root) if not isinstance(r, BadRow)}


def _climb_class(row) -> str:
    # CLIMB's src/datasets/ct/inspect.py rule, written out independently
    if row.pe_positive_nlp == 0:
        return "No PE"
    if row.pe_acute == 1 and row.pe_subsegmentalonly == 1:
        return "Acute Subsegmental-only PE"
    if row.pe_acute == 1:
        return "Acute PE"
    if row.pe_subsegmentalonly == 1:
        return "Subsegmental-only PE"
    return "Chronic PE"


def test_classes_follow_climbs_rule_on_the_label_table(root):
    labels = pd.read_csv(root / f"labels_{demo.STAMP}.tsv", sep="\t")
    recs = _records(root)
    assert set(recs) == set(labels.impression_id)
    seen = set()
    for row in labels.dropna(subset=["pe_positive_nlp"]).itertuples(index=False):
        if row.impression_id in (demo.MISSING, demo.TRUNCATED):
            continue
        [sample] = INSPECT().load(recs[row.impression_id], root)
        assert sample.classes == [_climb_class(row)]
        assert sample.source_labels["12_month_PH"] == str(row._10)
        seen.add(_climb_class(row))
    assert len(seen) == 5  # the fixture reaches every class
    with pytest.raises(Filtered):
        list(INSPECT().load(recs[demo.BLANK], root))


def test_official_split_and_patient_subject(root):
    splits = pd.read_csv(root / f"splits_{demo.STAMP}.tsv", sep="\t")
    mapping = pd.read_csv(root / f"study_mapping_{demo.STAMP}.tsv", sep="\t")
    recs = _records(root)
    want = {"train": "train", "valid": "val", "test": "test"}
    for row in splits.itertuples(index=False):
        assert recs[row.impression_id].split == want[row.split]
    for row in mapping.itertuples(index=False):
        assert recs[row.impression_id].subject_id == row.person_id
    assert recs["PE453aa01"].subject_id == recs["PE453aa02"].subject_id == "P001"


@pytest.mark.parametrize("impression", ["PE453aa01", "PE453aa04"])
def test_volume_is_nibabels_canonical_image(root, impression):
    [sample] = INSPECT().load(_records(root)[impression], root)
    ref = nib.as_closest_canonical(nib.load(root / "CTPA" / f"{impression}.nii.gz"))
    vol = sample.payloads["volume"]
    np.testing.assert_array_equal(vol.data, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(vol.descriptor["affine"], ref.affine, atol=1e-6)
    assert vol.descriptor["orientation"] == "RAS" and sample.meta["source_orientation"] == "LPS"
    assert vol.data.dtype == np.int16 and vol.descriptor["units"] == "HU"


def test_ehr_tables_and_impressions_are_never_read(root, tmp_path):
    import shutil

    opened = []
    import builtins

    real_open = builtins.open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    builtins.open = spy
    try:
        recs = _records(root)
        for rid in ("PE453aa01", "PE453aa05"):
            list(INSPECT().load(recs[rid], root))
    finally:
        builtins.open = real_open
    assert not [p for p in opened if "EHR_CSV" in p or "impressions_" in p]
    # and the adapter does not break without them, nor with the CLIMB label file only
    climb = tmp_path / "climb"
    shutil.copytree(root / "CTPA", climb / "CTPA")
    labels = pd.read_csv(root / f"labels_{demo.STAMP}.tsv", sep="\t")
    labels.rename(columns={"pe_positive_nlp": "pe_positive"})[
        ["impression_id", "pe_positive", "pe_acute", "pe_subsegmentalonly"]
    ].to_csv(climb / "Final_Impressions_labels.csv", index=False)
    recs = {r.record_id: r for r in INSPECT().list_records(climb)}
    assert recs["PE453aa02"].split is None and recs["PE453aa02"].subject_id == "PE453aa02"
    [s] = INSPECT().load(recs["PE453aa02"], climb)
    assert s.classes == ["Acute Subsegmental-only PE"]
    assert s.source_labels["12_month_PH"] is None


def test_broken_studies(root, tmp_path):
    recs = _records(root)
    with pytest.raises(RecordError, match="missing CT CTPA/PE453aa08.nii.gz"):
        list(INSPECT().load(recs[demo.MISSING], root))
    with pytest.raises(RecordError, match="cut short"):
        list(INSPECT().load(recs[demo.TRUNCATED], root))
    mutated = tmp_path / "m"
    demo.write_fixture(mutated)
    expect = demo.malformed_row(mutated, tmp_path / "outside")
    bad = {f"{b.file}:{b.line}" for b in INSPECT().list_records(mutated)
           if isinstance(b, BadRow)}
    assert bad == set(expect.quarantined)
