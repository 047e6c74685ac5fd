"""PTB-XL adapter over a miniature in the real layout (real ECG from pydicom, WFDB via wfdb)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.signal import resample_poly

from medshard.demo.ptbxl import SCP_STATEMENTS
from medshard.pipeline.transforms.signal import ECG_LEADS, ECG_SPEC, standardize_signal
from medshard.schemas import Filtered
from medshard.sources import get_source


@pytest.fixture(scope="module")
def statements():
    return {code: {"diagnostic": "1.0" if diag else "", "diagnostic_class": cls or ""}
            for code, _, diag, _, _, cls, _ in SCP_STATEMENTS}


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"NORM": 100.0, "SR": 0.0}, ["NORM"]),
        ({"SR": 0.0}, []),  # sinus rhythm alone never makes a record Normal
        ({"IMI": 80.0, "SR": 0.0}, ["MI"]),
        ({"LVH": 100.0, "NDT": 50.0}, ["HYP", "STTC"]),
        ({"AFIB": 100.0, "LAFB": 100.0}, ["AFIB", "CD"]),
        ({"AFLT": 100.0}, ["AFLT"]),
        ({"STACH": 100.0, "LVOLT": 0.0}, ["OTHER"]),
        ({"NORM": 100.0, "IRBBB": 100.0}, ["CD", "NORM"]),
    ],
)
def test_classes_follow_scp_statements(statements, codes, expected):
    assert get_source("ptb-xl").classes_for(codes, statements) == expected


def test_min_likelihood_option_drops_weak_statements(statements):
    src = get_source("ptb-xl", min_likelihood=50)
    assert src.classes_for({"IMI": 35.0, "NORM": 100.0}, statements) == ["NORM"]


def test_records_use_strat_fold_and_prefer_500hz(demo_raw):
    recs = list(get_source("ptb-xl").list_records(demo_raw / "ptb-xl"))
    assert len(recs) == 12
    folds = {r.record_id: (r.meta["strat_fold"], r.split) for r in recs}
    for fold, split in folds.values():
        assert split == ("train" if fold <= 8 else "val" if fold == 9 else "test")
    assert all(r.files[0].startswith("records500/") for r in recs)
    r = recs[0]
    assert r.source_labels == {"scp_codes": {"NORM": 100.0, "SR": 0.0}}
    assert r.subject_id == "1000"  # written as "1000.0" in the CSV
    # allow-list: staff ids, dates and free-text report never leave the source
    assert not {"nurse", "recording_date", "report", "validated_by", "device"} & set(r.meta)
    assert r.meta["sex"] == "F"


def test_falls_back_to_records100(demo_raw, tmp_path):
    root = tmp_path / "ptb-xl"
    shutil.copytree(demo_raw / "ptb-xl", root)
    shutil.rmtree(root / "records500")
    recs = list(get_source("ptb-xl").list_records(root))
    assert all(r.files[0].startswith("records100/") for r in recs)
    sample = next(get_source("ptb-xl").load(recs[0], root))
    assert sample.payloads["signal"].descriptor["sampling_rate_hz"] == 100.0


def test_signal_matches_independent_wfdb_and_scipy(demo_raw):
    import wfdb

    root = demo_raw / "ptb-xl"
    src = get_source("ptb-xl")
    rec = next(r for r in src.list_records(root) if r.record_id == "00002")
    rec100 = rec.model_copy(update={"files": ["records100/00000/00002_lr.hea",
                                              "records100/00000/00002_lr.dat"]})
    for record, up in ((rec, 1), (rec100, 5)):
        sample = next(src.load(record, root))
        p = sample.payloads["signal"]
        data, desc = standardize_signal(p.data, p.descriptor, ECG_SPEC)

        raw, fields = wfdb.rdsamp(str(root / record.files[0][:-4]))
        names = [n.upper() for n in fields["sig_name"]]
        order = [names.index(lead.upper()) for lead in ECG_LEADS]
        expected = resample_poly(raw[:, order].T, up, 1, axis=1)[:, :2500]
        rng = expected.max(axis=1) - expected.min(axis=1)
        np.testing.assert_allclose(data, expected / rng[:, None], rtol=1e-5, atol=1e-6)
        assert data.shape == (12, 2500) and data.dtype == np.float32
        assert desc["channels"] == ECG_LEADS
        assert desc["units"] == "mV"
        assert desc["original_sampling_rate_hz"] == 500.0 / up
        # amplitudes are recoverable from the stored scale
        np.testing.assert_allclose(data * np.array(desc["scale"])[:, None], expected, atol=1e-5)


def test_leading_zeros_are_filtered(demo_raw):
    root = demo_raw / "ptb-xl"
    src = get_source("ptb-xl")
    rec = next(r for r in src.list_records(root) if r.record_id == "00006")
    p = next(src.load(rec, root)).payloads["signal"]
    with pytest.raises(Filtered, match="first 15 samples zero"):
        standardize_signal(p.data, p.descriptor, ECG_SPEC)


def test_native_wfdb_reader_matches_wfdb(demo_raw, tmp_path):
    import wfdb

    from medshard.sources.wfdb_format import read_record

    root = demo_raw / "ptb-xl"
    for base in sorted(root.glob("records*/00000/*.hea"))[:6]:
        ours, fields = read_record(base.with_suffix(""))
        ref, ref_fields = wfdb.rdsamp(str(base.with_suffix("")))
        np.testing.assert_array_equal(ours, ref)
        assert fields["fs"] == ref_fields["fs"]
        assert list(fields["sig_name"]) == list(ref_fields["sig_name"])
        assert list(fields["units"]) == list(ref_fields["units"])
    # the invalid-sample value of format 16 reads as NaN, as wfdb does
    sig = np.zeros((500, 2))
    sig[100:200, 1] = np.nan
    wfdb.wrsamp("nan", fs=500, units=["mV", "mV"], sig_name=["I", "II"], p_signal=sig,
                fmt=["16", "16"], adc_gain=[1000.0, 1000.0], baseline=[0, 0],
                write_dir=str(tmp_path))
    ours, _ = read_record(tmp_path / "nan")
    ref, _ = wfdb.rdsamp(str(tmp_path / "nan"))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.isnan(ours[150, 1])
