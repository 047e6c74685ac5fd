"""PTB-XL adapter over a miniature in the real layout (real ECG from pydicom, WFDB via wfdb)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.signal import resample_poly

from medshard.pipeline.transforms.signal import standardize_signal
from medshard.schemas import Filtered
from medshard.schemas.standards import ECG_LEADS, ECG_SPEC
from medshard.sources import get_source
from medshard.sources.ecg.ptbxl_fixture import SCP_STATEMENTS


@pytest.fixture(scope="module")
def statements():
    return {code: {"diagnostic": "1.0" if diag else "", "diagnostic_class": cls or ""}
            for code, _, diag, _, _, cls, _ in SCP_STATEMENTS}


@pytest.fixture(scope="module")
def all_statements():
    """Every PTB-XL statement with its real diagnostic flag and class (PTB-XL 1.0.3)."""
    diagnostic = {
        "NORM": "NORM", "IMI": "MI", "ASMI": "MI", "ILMI": "MI", "AMI": "MI", "ALMI": "MI",
        "INJAS": "MI", "LMI": "MI", "INJAL": "MI", "IPLMI": "MI", "IPMI": "MI", "INJIN": "MI",
        "INJLA": "MI", "PMI": "MI", "INJIL": "MI", "LVH": "HYP", "LAO/LAE": "HYP",
        "RVH": "HYP", "RAO/RAE": "HYP", "SEHYP": "HYP", "LAFB": "CD", "IRBBB": "CD",
        "1AVB": "CD", "IVCD": "CD", "CRBBB": "CD", "CLBBB": "CD", "LPFB": "CD", "WPW": "CD",
        "ILBBB": "CD", "3AVB": "CD", "2AVB": "CD", "NDT": "STTC", "NST_": "STTC",
        "DIG": "STTC", "LNGQT": "STTC", "ISC_": "STTC", "ISCAL": "STTC", "ISCIN": "STTC",
        "ISCIL": "STTC", "ISCAS": "STTC", "ISCLA": "STTC", "ANEUR": "STTC", "EL": "STTC",
        "ISCAN": "STTC",
    }
    others = ["ABQRS", "PVC", "STD_", "VCLVH", "QWAVE", "LOWT", "NT_", "PAC", "LPR", "INVT",
              "LVOLT", "HVOLT", "TAB_", "STE_", "PRC(S)", "SR", "AFIB", "STACH", "SARRH",
              "SBRAD", "PACE", "SVARR", "BIGU", "AFLT", "SVTAC", "PSVT", "TRIGU"]
    table = {c: {"diagnostic": "1.0", "diagnostic_class": k} for c, k in diagnostic.items()}
    table.update({c: {"diagnostic": "", "diagnostic_class": ""} for c in others})
    assert len(table) == 71
    return table


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"NORM": 100.0, "SR": 0.0}, ["NORM"]),
        ({"SR": 0.0}, []),  # sinus rhythm alone never makes a record Normal
        ({"STD_": 0.0, "SR": 0.0}, ["STTC"]),  # CLIMB's table: ST depression is STTC
        ({"IMI": 80.0, "SR": 0.0}, ["MI"]),
        ({"LVH": 100.0, "NDT": 50.0}, ["HYP", "STTC"]),
        ({"AFIB": 100.0, "LAFB": 100.0}, ["AFIB", "CD"]),
        ({"AFLT": 100.0}, ["AFLT"]),
        ({"STACH": 100.0, "LVOLT": 0.0}, ["OTHER"]),
        ({"NORM": 100.0, "IRBBB": 100.0}, ["CD", "NORM"]),
    ],
)
def test_classes_follow_climbs_statement_table(statements, codes, expected):
    assert get_source("ptb-xl").classes_for(codes, statements) == expected


# One statement of each group of CLIMB's table (and each departure from it), alone.
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NORM", ["NORM"]),
        *[(c, []) for c in ("SR", "SARRH", "SBRAD", "STACH")],  # CLIMB: normal; here none
        *[(c, ["CD"]) for c in ("1AVB", "CLBBB", "LPR", "PSVT", "SVARR", "SVTAC", "WPW")],
        *[(c, ["HYP"]) for c in ("LVH", "RAO/RAE", "SEHYP", "VCLVH")],
        *[(c, ["MI"]) for c in ("IMI", "ASMI", "INJIL", "INJIN")],  # INJIN: not in CLIMB's
        *[(c, ["STTC"]) for c in ("NDT", "ISC_", "STD_", "STE_", "TAB_", "NT_", "INVT")],
        ("AFIB", ["AFIB"]),
        ("AFLT", ["AFLT"]),
        *[(c, ["OTHER"]) for c in ("PVC", "PAC", "HVOLT", "LVOLT", "PACE", "BIGU", "PRC(S)")],
    ],
)
def test_every_statement_group_of_the_climb_table(all_statements, code, expected):
    assert get_source("ptb-xl").classes_for({code: 0.0}, all_statements) == expected


def test_climb_table_covers_every_ptbxl_statement(all_statements):
    from medshard.sources.ecg.ptbxl import CLIMB_STATEMENT_CLASS

    assert set(CLIMB_STATEMENT_CLASS) == set(all_statements)
    label_space = set(get_source("ptb-xl").info.label_space)
    assert {c for c in CLIMB_STATEMENT_CLASS.values() if c} == label_space


def test_climb_table_is_printed_in_the_vocabulary_docs():
    from pathlib import Path

    from medshard.sources.ecg.ptbxl import CLIMB_STATEMENT_CLASS

    doc = (Path(__file__).parents[1] / "docs" / "vocabulary.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in CLIMB_STATEMENT_CLASS:
            rows[cells[0]] = None if cells[1] in ("-", "") else cells[1]
    assert rows == CLIMB_STATEMENT_CLASS


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({"NORM": 100.0, "SR": 0.0}, ["NORM"]),
        ({"STD_": 0.0, "SR": 0.0}, []),  # form statements are no superclass
        ({"LVH": 100.0, "NDT": 50.0, "VCLVH": 0.0}, ["HYP", "STTC"]),
        ({"AFIB": 100.0, "LAFB": 100.0}, ["CD"]),
        ({"INVT": 0.0, "IMI": 35.0}, ["MI"]),
    ],
)
def test_ptbxl_superclass_policy(all_statements, codes, expected):
    src = get_source("ptb-xl", label_policy="ptbxl-superclass")
    assert src.classes_for(codes, all_statements) == expected
    assert src.label_classes() == ["NORM", "CD", "HYP", "MI", "STTC"]


def test_bad_options_are_refused():
    for options in ({"label_policy": "benchmd"}, {"min_likelihood": 150},
                    {"min_likelihood": "high"}, {"prefer_rate": 250}):
        with pytest.raises(ValueError, match="ptb-xl: "):
            get_source("ptb-xl", **options)


def test_min_likelihood_applies_to_diagnostic_statements_only(statements):
    src = get_source("ptb-xl", min_likelihood=50)
    assert src.classes_for({"IMI": 35.0, "NORM": 100.0}, statements) == ["NORM"]
    # rhythm and form statements carry likelihood 0, "unknown": they survive the threshold
    assert src.classes_for({"AFIB": 0.0, "NORM": 100.0}, statements) == ["AFIB", "NORM"]
    assert src.classes_for({"LVOLT": 0.0}, statements) == ["OTHER"]


def test_records_use_strat_fold_and_prefer_500hz(demo_raw):
    recs = list(get_source("ptb-xl").list_records(demo_raw / "ptb-xl"))
    assert len(recs) == 12
    folds = {r.record_id: (r.meta["strat_fold"], r.split) for r in recs}
    for fold, split in folds.values():
        assert split == ("train" if fold <= 8 else "val" if fold == 9 else "test")
    # every record from records500/ except the one the demo leaves only at 100 Hz
    assert [r.record_id for r in recs if not r.files[0].startswith("records500/")] == ["00012"]
    r = recs[0]
    assert r.source_labels == {"scp_codes": [{"statement": "NORM", "likelihood": 100.0},
                                             {"statement": "SR", "likelihood": 0.0}]}
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
        expected = resample_poly(raw[:, order].T, up, 1, axis=1)[:, :5000]
        factor = expected.max() - expected.min()  # one factor over all leads (CLIMB's code)
        np.testing.assert_allclose(data, expected / factor, rtol=1e-5, atol=1e-6)
        assert data.shape == (12, 5000) and data.dtype == np.float32
        assert desc["channels"] == ECG_LEADS
        assert desc["units"] == "mV"
        assert desc["normalization"] == "record-range"
        assert desc["original_sampling_rate_hz"] == 500.0 / up
        assert desc["original_duration_s"] == pytest.approx(10.0)
        assert desc["valid_samples"] == 5000
        assert desc["scale"] == [pytest.approx(factor)] * 12
        # amplitudes in mV are recoverable from the stored scale
        np.testing.assert_allclose(data * np.array(desc["scale"])[:, None], expected, atol=1e-5)


def test_whole_ten_seconds_are_kept_with_an_event_at_7s():
    rate = 500.0
    t = np.arange(int(10 * rate)) / rate
    sig = np.tile(0.05 * np.sin(2 * np.pi * 1.2 * t), (12, 1))
    event = (t >= 7.0) & (t < 7.1)
    sig[:, event] += 3.0  # a distinct event (a wide ectopic complex) at 7 s
    desc = {"sampling_rate_hz": rate, "channels": ECG_LEADS, "units": "mV"}
    data, out = standardize_signal(sig, desc, ECG_SPEC)
    assert data.shape == (12, 5000)
    stored = data * np.array(out["scale"])[:, None]
    assert np.argmax(stored[0]) == pytest.approx(3500, abs=50)
    np.testing.assert_allclose(stored, sig, atol=1e-5)


def test_short_records_are_padded_and_long_ones_cropped_with_true_length():
    desc = {"sampling_rate_hz": 250.0, "channels": ECG_LEADS, "units": "mV"}
    rng = np.random.default_rng(3)
    short = rng.normal(size=(12, 1500))  # 6 s at 250 Hz
    data, out = standardize_signal(short, desc, ECG_SPEC)
    expected = resample_poly(short, 2, 1, axis=1)  # independent: SciPy at 500 Hz
    np.testing.assert_allclose(data[:, :3000] * out["scale"][0], expected, atol=1e-5)
    assert not data[:, 3000:].any()
    assert out["original_duration_s"] == pytest.approx(6.0) and out["valid_samples"] == 3000
    assert out["scale"][0] == pytest.approx(expected.max() - expected.min())  # not the padding
    long = rng.normal(size=(12, 3750))  # 15 s
    data, out = standardize_signal(long, desc, ECG_SPEC)
    assert data.shape == (12, 5000) and out["original_duration_s"] == pytest.approx(15.0)


def test_record_normalization_keeps_inter_lead_amplitude_ratios(demo_raw):
    from dataclasses import replace

    root = demo_raw / "ptb-xl"
    src = get_source("ptb-xl")
    rec = next(r for r in src.list_records(root) if r.record_id == "00003")
    p = next(src.load(rec, root)).payloads["signal"]
    names = [n.upper() for n in p.descriptor["channels"]]
    raw_i, raw_v2 = p.data[names.index("I")], p.data[names.index("V2")]
    raw_ratio = np.ptp(raw_v2) / np.ptp(raw_i)
    data, _ = standardize_signal(p.data, p.descriptor, ECG_SPEC)
    i, v2 = ECG_LEADS.index("I"), ECG_LEADS.index("V2")
    assert abs(np.ptp(data[v2]) / np.ptp(data[i]) - raw_ratio) < 1e-6 * raw_ratio
    assert np.ptp(data) == pytest.approx(1.0, abs=1e-6)
    # the per-lead option keeps the old behaviour (every lead spans 1), "none" keeps mV
    lead, _ = standardize_signal(p.data, p.descriptor, replace(ECG_SPEC, normalization="lead-range"))
    np.testing.assert_allclose(np.ptp(lead, axis=1), 1.0, atol=1e-6)
    mv, out = standardize_signal(p.data, p.descriptor, replace(ECG_SPEC, normalization="none"))
    assert out["scale"] == [1.0] * 12
    np.testing.assert_allclose(mv[i], raw_i[:5000], atol=1e-5)


def test_leading_zeros_are_filtered(demo_raw):
    root = demo_raw / "ptb-xl"
    src = get_source("ptb-xl")
    rec = next(r for r in src.list_records(root) if r.record_id == "00006")
    p = next(src.load(rec, root)).payloads["signal"]
    with pytest.raises(Filtered, match="first 15 samples zero"):
        standardize_signal(p.data, p.descriptor, ECG_SPEC)


def test_native_wfdb_reader_matches_wfdb(demo_raw, tmp_path):
    import wfdb

    from medshard.formats.wfdb import read_record

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
