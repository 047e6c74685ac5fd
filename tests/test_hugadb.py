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
