"""CPSC 2018, Georgia, Chapman-Shaoxing: the Challenge `.hea`/`.mat` reader, windows, labels, and
one ECG build with PTB-XL. Expectations come from wfdb, scipy.io and numpy, not from medshard."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from medshard.formats.challenge_mat import read_record
from medshard.schemas.standards import ECG_LEADS
from medshard.sources import get_source
from medshard.sources.ecg.challenge_fixture import (
    GAIN,
    ecg_of_length,
    write_cpsc,
    write_record,
)


def test_mat_values_over_the_header_gain_are_the_raw_mv(tmp_path: Path) -> None:
    import wfdb

    mv = ecg_of_length(10, 0.0)
    val = write_record(tmp_path, "A0100", mv, ["164889003"])
    signal, header = read_record(tmp_path / "A0100.hea")
    assert header.fs == 500 and header.n_samples == 5000 and header.leads[0] == "I"
    # what was written, in mV, to the 1/1000 mV the int16 keeps
    np.testing.assert_allclose(signal, mv, atol=0.5 / GAIN + 1e-12)
    np.testing.assert_array_equal(signal, loadmat(str(tmp_path / "A0100.mat"))["val"] / GAIN)
    # WFDB's own reader of the same files (format 16 after the 24-byte MATLAB preamble)
    p_signal, fields = wfdb.rdsamp(str(tmp_path / "A0100"))
    np.testing.assert_allclose(signal, p_signal.T, atol=1e-9)
    assert fields["sig_name"] == header.leads
    assert np.array_equal(val, np.round(p_signal.T * GAIN).astype(np.int16))


def test_header_comments_and_listing(tmp_path: Path) -> None:
    root = write_cpsc(tmp_path / "cpsc")
    records = {r.record_id: r for r in get_source("cpsc").list_records(root)}
    assert records["A0002"].source_labels == {"dx": ["59118001", "429622005"]}
    assert records["A0002"].meta == {"age": 61.0, "sex": "F"}
    assert records["A0004"].meta == {"age": None, "sex": "F"}  # #Age: NaN is null, not 0
    assert records["A0001"].subject_id == "A0001"  # no patient identity in the header
    assert records["A0001"].files == ["training/cpsc_2018/g1/A0001.hea",
                                      "training/cpsc_2018/g1/A0001.mat"]


def _samples(tar_paths: list[Path]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in tar_paths:
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                key, _, ext = m.name.rpartition("/")[2].partition(".")
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                role = ext.split(".")[0]  # `signal.npy` -> signal
                out.setdefault(key, {})[role] = (json.loads(data) if ext == "json"
                                                 else np.load(io.BytesIO(data)))
    return out


@pytest.fixture(scope="module")
def ecg_build(tmp_path_factory) -> tuple[Path, Path]:
    """`medshard build ptb-xl chapman-shaoxing georgia cpsc` over the four fixtures."""
    from medshard.cli import main
    from medshard.testing.kit import write_fixtures

    work = tmp_path_factory.mktemp("ecg")
    slugs = ["ptb-xl", "chapman-shaoxing", "georgia", "cpsc"]
    write_fixtures(slugs, work / "raw")
    assert main(["build", *slugs, "--data-root", str(work / "raw"), "--out",
                 str(work / "out")]) == 0
    return work / "raw", work / "out"


def test_cpsc_37_s_record_gives_three_windows_as_numpy_cuts_them(ecg_build) -> None:
    raw, out = ecg_build
    samples = _samples(sorted((out / "webdataset" / "cpsc").rglob("*.tar")))
    mat = raw / "cpsc" / "training" / "cpsc_2018" / "g1"
    mv = loadmat(str(mat / "A0001.mat"))["val"] / GAIN  # 12 x 18500: 37 s at 500 Hz
    assert mv.shape == (12, 18500)
    keys = sorted(k for k in samples if k.startswith("cpsc_A0001_"))
    assert keys == ["cpsc_A0001_w00", "cpsc_A0001_w01", "cpsc_A0001_w02"]
    for w, key in enumerate(keys):
        expected = mv[:, w * 5000 : (w + 1) * 5000]
        expected = expected / (expected.max() - expected.min())  # record-range
        np.testing.assert_allclose(samples[key]["signal"], expected, rtol=1e-6, atol=1e-6)
        meta = samples[key]["json"]
        assert meta["meta"]["window_index"] == w and meta["meta"]["n_windows"] == 3
        assert meta["meta"]["tail_dropped_s"] == pytest.approx(7.0)  # the rest: dropped
        assert meta["meta"]["record_duration_s"] == pytest.approx(37.0)
        assert meta["source_labels"] == {"dx": ["164889003"]}
        assert meta["labels"] == ["ecg.afib"]
    assert len({samples[k]["json"]["split"] for k in keys}) == 1  # all in the record's split


def test_cpsc_6_s_record_is_padded_and_keeps_its_true_length(ecg_build) -> None:
    raw, out = ecg_build
    samples = _samples(sorted((out / "webdataset" / "cpsc").rglob("*.tar")))
    mv = loadmat(str(raw / "cpsc" / "training" / "cpsc_2018" / "g1" / "A0002.mat"))["val"] / GAIN
    got = samples["cpsc_A0002_w00"]
    desc = got["json"]["payloads"]["signal"]
    assert desc["original_duration_s"] == pytest.approx(6.0)
    assert desc["valid_samples"] == 3000 and desc["n_samples"] == 5000
    expected = np.pad(mv / (mv.max() - mv.min()), [(0, 0), (0, 2000)])
    np.testing.assert_allclose(got["signal"], expected, rtol=1e-6, atol=1e-6)
    assert got["json"]["meta"]["tail_dropped_s"] == 0.0


def test_sinus_rhythm_alone_is_not_normal(ecg_build) -> None:
    _, out = ecg_build
    samples = _samples(sorted((out / "webdataset" / "cpsc").rglob("*.tar")))
    meta = samples["cpsc_A0003_w00"]["json"]
    assert meta["source_labels"] == {"dx": ["426783006"]}
    assert meta["labels"] == []


def test_four_ecg_sources_share_one_standard(ecg_build) -> None:
    _, out = ecg_build
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["sources"]) == {"ptb-xl", "chapman-shaoxing", "georgia", "cpsc"}
    samples = _samples(sorted(out.rglob("*.tar")))
    assert {k.split("_")[0] for k in samples} == {"ptb-xl", "chapman-shaoxing", "georgia",
                                                  "cpsc"}
    for key, s in samples.items():
        desc = s["json"]["payloads"]["signal"]
        assert desc["sampling_rate_hz"] == 500.0, key
        assert desc["n_samples"] == 5000 and s["signal"].shape == (12, 5000), key
        assert desc["channels"] == ECG_LEADS, key
        assert desc["normalization"] == "record-range", key
        assert len(set(desc["scale"])) == 1, key  # one factor per record: lead ratios kept
        assert s["json"]["modality"] == "ecg"
