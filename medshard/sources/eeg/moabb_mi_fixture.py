"""A miniature BCI Competition IV 2a (BNCI 2014-001) in its release layout: GDF sessions + label files.

Layout: `BCICIV_2a_gdf/A0xT.gdf`, `A0xE.gdf` and the true labels `true_labels/A0xT.mat`,
`A0xE.mat` (`classlabel`, 1-4), as the competition's download page gives them.

GDF writer. No installed library writes GDF (MNE exports EDF, BrainVision and EEGLAB;
pyedflib writes EDF/BDF), so `write_gdf` below writes GDF 2.10 by the GDF 2 layout
(a 256-byte fixed header, 256 bytes per channel stored field by field, int16 data
records, an event table of mode 3 after the data). Its only proof is an independent
reader: MNE's `read_raw_gdf` reads every fixture file, and the tests check that the
signal and events MNE returns are what was written.

Real: the EEG is the one real scalp EEG trace shipped in medshard's dependencies
(pyedflib's `test_utf8.edf`, Fp1, 128 Hz), polyphase-resampled to the dataset's 250 Hz;
each of the 22 EEG and 3 EOG channels is that trace from its own offset, so channels are
not simultaneous (no real spatial structure; the EOG is EEG). Illustrative: everything
else (subjects, trial timing following the competition's paradigm, class order, the
rejected-trial marker, the patient field). Broken on purpose: a session cut short inside
its data (MNE finds no event table), and an evaluation session without its label file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from medshard.testing.fixture import Fixture

RATE = 250
GDF_LABELS = [
    "EEG-Fz", "EEG-0", "EEG-1", "EEG-2", "EEG-3", "EEG-4", "EEG-5", "EEG-C3", "EEG-6", "EEG-Cz",
    "EEG-7", "EEG-C4", "EEG-8", "EEG-9", "EEG-10", "EEG-11", "EEG-12", "EEG-13", "EEG-14",
    "EEG-Pz", "EEG-15", "EEG-16", "EOG-left", "EOG-central", "EOG-right",
]
PATIENT_MARKER = "Quillfeather"  # planted in the GDF patient field; must never leave
PHYS_RANGE_UV = 400.0  # int16 over +-400 uV: ~0.012 uV per step

# GDF event codes (competition description, desc_2a.pdf, Table 2)
RUN_START, TRIAL_START, REJECTED, UNKNOWN_CUE = 32766, 768, 1023, 783
CUE_CODES = (769, 770, 771, 772)
TRIAL_S = 8.0  # fixation at 0 s, cue at 2 s, imagery to 6 s, then a break


def write_gdf(path: Path, data_uv: np.ndarray, labels: list[str], rate: int,
              events: list[tuple[int, int, int]], patient: str = "X") -> None:
    """Write `data_uv` (channels x samples, microvolts) as GDF 2.10 with int16 records of 1 s.

    `events`: (0-based sample, type code, duration in samples), written as an event table
    of mode 3 (positions 1-based, as GDF stores them).
    """
    ns, n = data_uv.shape
    n_records = -(-n // rate)
    padded = np.zeros((ns, n_records * rate))
    padded[:, :n] = data_uv
    dig = np.clip(np.round(padded / PHYS_RANGE_UV * 32767), -32767, 32767).astype("<i2")
    fixed = bytearray(256)
    fixed[0:8] = b"GDF 2.10"
    fixed[8:74] = f"{patient} X".encode("latin-1").ljust(66)[:66]
    fixed[88:152] = b"BCI Competition IV 2a fixture".ljust(64)
    struct.pack_into("<H", fixed, 184, 1 + ns)  # header length in 256-byte blocks
    struct.pack_into("<q", fixed, 236, n_records)
    struct.pack_into("<II", fixed, 244, 1, 1)  # record duration 1/1 s
    struct.pack_into("<H", fixed, 252, ns)
    var = bytearray()
    var += b"".join(lb.encode().ljust(16)[:16] for lb in labels)
    var += b"".join(b"Ag/AgCl electrode".ljust(80) for _ in labels)
    var += b"".join(b"uV".ljust(6) for _ in labels)
    var += struct.pack(f"<{ns}H", *([4275] * ns))  # physical dimension code: microvolt
    var += struct.pack(f"<{ns}d", *([-PHYS_RANGE_UV] * ns))
    var += struct.pack(f"<{ns}d", *([PHYS_RANGE_UV] * ns))
    var += struct.pack(f"<{ns}d", *([-32767.0] * ns))
    var += struct.pack(f"<{ns}d", *([32767.0] * ns))
    var += b"\0" * (68 * ns)  # obsolete prefiltering text
    var += struct.pack(f"<{ns}f", *([100.0] * ns))  # low pass (Hz)
    var += struct.pack(f"<{ns}f", *([0.5] * ns))  # high pass (Hz)
    var += struct.pack(f"<{ns}f", *([50.0] * ns))  # notch (Hz)
    var += struct.pack(f"<{ns}i", *([rate] * ns))  # samples per record
    var += struct.pack(f"<{ns}i", *([3] * ns))  # GDF type 3: int16
    var += b"\0" * (12 * ns)  # electrode positions
    var += bytes([255] * ns)  # impedance unknown
    var += b"\0" * (19 * ns)
    assert len(var) == 256 * ns
    records = dig.reshape(ns, n_records, rate).transpose(1, 0, 2)  # record, channel, sample
    pos = [s + 1 for s, _, _ in events]
    table = bytes([3]) + len(events).to_bytes(3, "little") + struct.pack("<f", float(rate))
    table += struct.pack(f"<{len(events)}I", *pos)
    table += struct.pack(f"<{len(events)}H", *[c for _, c, _ in events])
    table += struct.pack(f"<{len(events)}H", *([0] * len(events)))
    table += struct.pack(f"<{len(events)}I", *[d for _, _, d in events])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(fixed) + bytes(var) + records.tobytes() + table)


def session_signal(n_samples: int, offset_s: float) -> np.ndarray:
    """25 x n_samples microvolts: the real EEG trace from a different offset per channel."""
    from medshard.sources.eeg.tuab_fixture import real_eeg_at

    base = real_eeg_at(RATE)
    starts = [int(round((k * 23.0 + offset_s) * RATE)) % base.size for k in range(25)]
    idx = np.arange(n_samples)
    return np.stack([base[(idx + s) % base.size] for s in starts])


def session_events(classes: list[int], evaluation: bool, rejected: set[int]) -> tuple[
        list[tuple[int, int, int]], int]:
    """The competition's trial timeline: (events, n_samples). Trial k starts at 2 s + 8 s * k."""
    events = [(0, RUN_START, 0)]
    for k, cls in enumerate(classes):
        start = int((2.0 + TRIAL_S * k) * RATE)
        events.append((start, TRIAL_START, int(6 * RATE)))
        if k in rejected:
            events.append((start, REJECTED, int(6 * RATE)))
        cue = UNKNOWN_CUE if evaluation else CUE_CODES[cls - 1]
        events.append((start + 2 * RATE, cue, int(1.25 * RATE)))
    return events, int((2.0 + TRIAL_S * len(classes)) * RATE)


# subject -> (T classes, E classes); classes 1 left hand, 2 right hand, 3 feet, 4 tongue
SESSIONS = {"A01": ([1, 2, 3, 4], [4, 2, 1, 3]), "A02": ([2, 4, 1, 3], [3, 1, 4, 2])}
REJECTED_TRIALS = {("A01", "T"): {2}}


def write_session(root: Path, subject: str, session: str, classes: list[int],
                  with_labels: bool = True) -> Path:
    from scipy.io import savemat

    evaluation = session == "E"
    events, n = session_events(classes, evaluation, REJECTED_TRIALS.get((subject, session), set()))
    offset = 37.0 * int(subject[1:]) + (11.0 if evaluation else 0.0)
    gdf = root / "BCICIV_2a_gdf" / f"{subject}{session}.gdf"
    write_gdf(gdf, session_signal(n, offset), GDF_LABELS, RATE, events,
              patient=f"{subject}{PATIENT_MARKER}")
    if with_labels:
        labels = root / "true_labels" / f"{subject}{session}.mat"
        labels.parent.mkdir(parents=True, exist_ok=True)
        savemat(str(labels), {"classlabel": np.asarray(classes, dtype=np.uint8)[:, None]})
    return gdf


def write_fixture(root: Path) -> Path:
    for subject, (train, evaluation) in SESSIONS.items():
        write_session(root, subject, "T", train)
        write_session(root, subject, "E", evaluation)
    cut = write_session(root, "A03", "T", [1, 2, 3, 4])  # cut short inside its data
    cut.write_bytes(cut.read_bytes()[: 256 * 26 + 25 * 2 * RATE * 20])
    write_session(root, "A03", "E", [1, 2, 3, 4], with_labels=False)  # no true labels
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 8, "test": 8},
    quarantined={"A03T": "load", "A03E": "load"},
    phi_markers=(PATIENT_MARKER,),
    real="one real EEG channel (pyedflib's `test_utf8.edf`) at 250 Hz on all 22 EEG + 3 EOG "
    "channels, written as GDF 2.10 (MNE reads it back)",
    illustrative="every channel is that trace at its own offset (no real spatial structure; "
    "the EOG is EEG); subjects, trial order, the rejected-trial marker, the patient field; "
    "one session cut short and one evaluation session without labels (quarantined)",
)
