"""A miniature IIIC (HMS release layout): train.csv with vote counts and train_eegs/<eeg_id>.parquet.

Real: the EEG columns are the one real scalp EEG trace shipped in medshard's dependencies
(pyedflib's `test_utf8.edf`, 128 Hz) resampled to the release's 200 Hz, each electrode from
its own offset (so channels are not simultaneous: no real spatial structure); the EKG
column is lead II of pydicom's real 12-lead ECG (`waveform_ecg.dcm`) resampled to 200 Hz,
in microvolts. Illustrative: ids, patients, offsets, votes. Broken on purpose: a row
whose recording file is missing, a malformed row (a vote that is not a number), a row
whose labelled span runs past the end of its recording, and a row with no votes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medshard.testing.fixture import Fixture

COLUMNS = ["eeg_id", "eeg_sub_id", "eeg_label_offset_seconds", "spectrogram_id",
           "spectrogram_sub_id", "spectrogram_label_offset_seconds", "label_id", "patient_id",
           "expert_consensus", "seizure_vote", "lpd_vote", "gpd_vote", "lrda_vote",
           "grda_vote", "other_vote"]
ELECTRODES = ["Fp1", "F3", "C3", "P3", "F7", "T3", "T5", "O1", "Fz", "Cz", "Pz", "Fp2", "F4",
              "C4", "P4", "F8", "T4", "T6", "O2"]
RATE = 200

# eeg_id -> seconds of recording
RECORDINGS = {1628180742: 70.0, 722738444: 50.0, 2413091754: 60.0, 3134157373: 50.0,
              1909112436: 50.0}
# (eeg_id, sub_id, offset s, label_id, patient_id, consensus, votes SZ..Other)
ROWS = [
    (1628180742, 0, 0.0, 127492639, 42516, "Seizure", (3, 0, 0, 0, 0, 0)),
    (1628180742, 1, 6.0, 3887563113, 42516, "Seizure", (3, 0, 0, 0, 0, 0)),
    (1628180742, 2, 20.0, 1142670488, 42516, "LPD", (1, 2, 0, 0, 0, 0)),
    (722738444, 0, 0.0, 2413091755, 30539, "GPD", (0, 0, 12, 0, 1, 2)),
    (2413091754, 0, 0.0, 364593930, 56885, "LRDA", (0, 0, 0, 5, 0, 1)),
    (2413091754, 1, 10.0, 1029492710, 56885, "GRDA", (0, 0, 0, 0, 7, 7)),  # a tie
    (3134157373, 0, 0.0, 1548541862, 61174, "Other", (0, 0, 0, 0, 0, 14)),
    (1909112436, 0, 0.0, 3218846133, 17720, "Other", (0, 1, 0, 0, 0, 2)),
    (1111111111, 0, 0.0, 2000000001, 17720, "Other", (0, 0, 0, 0, 0, 3)),  # no recording
    (3134157373, 1, 25.0, 2000000002, 61174, "Other", (0, 0, 0, 0, 0, 3)),  # runs past the end
    (722738444, 1, 0.0, 2000000003, 30539, "Other", (0, 0, 0, 0, 0, 0)),  # no votes
]
MALFORMED_LABEL = 2000000004  # its lpd_vote is "two"


def recording(seconds: float, offset_s: float) -> dict[str, np.ndarray]:
    """Columns of a recording: 19 real-EEG electrodes (uV) and the real ECG lead II as EKG."""
    from scipy.signal import resample_poly

    from medshard.sources.ecg.ptbxl_fixture import real_ecg_mv
    from medshard.sources.eeg.tuab_fixture import real_eeg_at

    n = int(round(seconds * RATE))
    base = real_eeg_at(RATE)
    cols = {}
    for k, name in enumerate(ELECTRODES):
        s = int(round((k * 31.0 + offset_s) * RATE)) % base.size
        cols[name] = np.take(base, np.arange(s, s + n), mode="wrap").astype(np.float32)
    ecg, fs = real_ecg_mv()
    lead2 = resample_poly(ecg[:, 1], RATE, int(fs)) * 1000.0  # mV -> uV
    cols["EKG"] = np.take(lead2, np.arange(n), mode="wrap").astype(np.float32)
    return cols


def write_fixture(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "train_eegs").mkdir(parents=True, exist_ok=True)
    for i, (eeg_id, seconds) in enumerate(RECORDINGS.items()):
        pq.write_table(pa.table(recording(seconds, 17.0 * i)),
                       root / "train_eegs" / f"{eeg_id}.parquet")
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for eeg_id, sub, offset, label, patient, consensus, votes in ROWS:
            w.writerow([eeg_id, sub, offset, eeg_id + 7, sub, offset, label, patient, consensus,
                        *votes])
        w.writerow([722738444, 2, 0.0, 722738451, 2, 0.0, MALFORMED_LABEL, 30539, "LPD", 0,
                    "two", 0, 0, 0, 1])
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 7, "val": 1},
    quarantined={"2000000001": "load", "2000000002": "load", "2000000003": "load",
                 str(MALFORMED_LABEL): "load"},
    real="one real EEG channel (pyedflib's `test_utf8.edf`) at 200 Hz on all 19 electrodes; "
    "the EKG column is lead II of pydicom's real ECG",
    illustrative="every electrode is the one trace at its own offset (no real spatial "
    "structure); ids, patients, offsets, votes; a missing recording, a malformed row, a span "
    "past the end and a row without votes (quarantined)",
)
