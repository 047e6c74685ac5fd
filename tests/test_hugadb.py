"""HuGaDB: windows and their labels against the dataset's own reader (numpy.genfromtxt with four
header lines skipped, as Scripts/load_HuGaDB_file.py reads a file) and numpy's sliding windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from medshard.schemas.standards import SIGNAL_STANDARDS, WINDOW_STANDARDS
from medshard.sources import get_source
from medshard.sources.imu.hugadb import ACTIVITIES, README_RATE_HZ
from medshard.sources.imu.hugadb_fixture import write_fixture


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("hugadb") / "hugadb")


def test_the_imu_standard_declares_rate_window_and_hop() -> None:
    spec, window = SIGNAL_STANDARDS["imu"], WINDOW_STANDARDS["imu"]
    assert (spec.sampling_rate_hz, window.length_s, window.hop_s) == (100.0, 2.0, 1.0)
    assert spec.n_samples == window.length_s * spec.sampling_rate_hz


@pytest.mark.parametrize("session", ["HuGaDB_v2_various_01_00", "HuGaDB_v2_various_02_00",
                                     "HuGaDB_v2_various_04_00"])
def test_windows_are_the_clean_ones_numpy_cuts(root: Path, session: str) -> None:
    src = get_source("hugadb")
    record = next(r for r in src.list_records(root) if r.record_id == session)
    samples = list(src.load(record, root))
    table = np.genfromtxt(root / "HuGaDB v2" / f"{session}.txt", delimiter="\t", skip_header=4)
    win, hop = round(2.0 * README_RATE_HZ), round(1.0 * README_RATE_HZ)
    windows = sliding_window_view(table, win, axis=0)[::hop]  # n x 39 x win
    acts = windows[:, 38, :]
    clean = np.flatnonzero((acts == acts[:, :1]).all(axis=1))
    assert len(samples) == len(clean)
    assert samples[0].meta["session_windows"] == len(windows)
    assert samples[0].meta["session_windows_straddling"] == len(windows) - len(clean)
    assert len(windows) - len(clean) > 0  # these sessions change activity
    for sample, w in zip(samples, clean, strict=True):
        assert sample.classes == [ACTIVITIES[int(acts[w, 0])]]
        assert sample.source_labels["activity_id"] == int(acts[w, 0])
        np.testing.assert_array_equal(sample.payloads["acc"].data[0], windows[w, 0])  # acc_rf_x
        np.testing.assert_array_equal(sample.payloads["gyro"].data[-1], windows[w, 35])
        np.testing.assert_array_equal(sample.payloads["emg"].data, windows[w, 36:38])
        assert sample.meta["window_start_s"] == pytest.approx(w * hop / README_RATE_HZ)


def test_climb_label_set_keeps_four_classes(root: Path) -> None:
    src = get_source("hugadb", label_set="climb")
    assert src.label_classes() == ["Sitting", "Standing", "Sitting down", "Standing up"]
    record = next(r for r in src.list_records(root) if r.record_id == "HuGaDB_v2_various_01_00")
    by_activity = {s.source_labels["activity"]: s.classes for s in src.load(record, root)}
    assert by_activity["Walking"] == []
    assert by_activity["Standing up"] == ["Standing up"]


def test_split_unit_is_the_participant(root: Path) -> None:
    records = list(get_source("hugadb").list_records(root))
    assert {r.subject_id for r in records} == {f"{i:02d}" for i in range(1, 9)}
    assert all(r.split is None for r in records)  # keyed hash of the participant


def test_the_fixture_accelerometers_are_the_real_daphnet_recording(root: Path) -> None:
    # read independently: pandas on the cached CSV, numpy on the written session
    import pandas as pd

    from medshard.testing import realdata

    daphnet = pd.read_csv(realdata.get("daphnet-s06r02"))
    ankle = daphnet["ankle_horiz_fwd"].to_numpy(float)
    thigh = daphnet["leg_vert"].to_numpy(float)
    table = np.genfromtxt(root / "HuGaDB v2" / "HuGaDB_v2_walking_03_00.txt", delimiter="\t",
                          skip_header=4)
    t = np.arange(int(len(ankle) / 64.0 * README_RATE_HZ)) / README_RATE_HZ
    def counts(mg):  # +-2 g in int16, saturating like the sensor
        return np.clip(np.round(np.interp(t, np.arange(len(mg)) / 64.0, mg) * 16.384), -32768, 32767)

    expected_foot, expected_thigh = counts(ankle), counts(thigh)
    n = len(table)
    start = next(i for i in range(len(t) - n) if np.array_equal(table[:8, 0],
                                                                 expected_foot[i:i + 8]))
    np.testing.assert_array_equal(table[:, 0], expected_foot[start:start + n])  # acc_rf_x
    np.testing.assert_array_equal(table[:, 6], table[:, 0])  # the shin is the ankle sensor too
    np.testing.assert_array_equal(table[:, 13], expected_thigh[start:start + n])  # acc_rt_y
    assert start >= 24 * README_RATE_HZ - 1  # walking is cut from the walking part
    assert table[:, 0].std() > 1000  # real gait: hundreds of mg, not noise


def test_a_missing_real_recording_names_the_fetch_command(tmp_path, monkeypatch) -> None:
    from medshard.testing import realdata

    monkeypatch.setenv("MEDSHARD_REALDATA_CACHE", str(tmp_path))
    monkeypatch.setenv("MEDSHARD_REALDATA_OFFLINE", "1")
    entry = realdata.REGISTRY["daphnet-s06r02"]
    stale = tmp_path / f"{entry.package}-{entry.version}" / entry.member
    stale.parent.mkdir(parents=True)
    stale.write_text("timestamp,ankle_horiz_fwd\n")  # a file whose sha256 is wrong is not used
    with pytest.raises(realdata.RealDataMissing,
                       match=r"python -m medshard.testing.realdata fetch"):
        realdata.get("daphnet-s06r02")
