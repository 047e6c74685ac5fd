"""A miniature TUH EEG Abnormal Corpus (TUAB) in its real layout, written as real EDF files.

Layout (TUAB v3.0.1): `edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subj>_s<NNN>_t<NNN>.edf`,
channels labelled `EEG FP1-REF` ... like TUH sessions.

Signals: the only real scalp EEG shipped in medshard's dependencies is one channel
(Fp1, 128 Hz, about 698 s, microvolts) in pyedflib's test file `tests/data/test_utf8.edf`.
Every electrode of a fixture session is that real trace, polyphase-resampled to the
session rate and started at its own time offset (circularly), so each channel is real
EEG but channels are not truly simultaneous: spatial correlations between electrodes
are not real. Identifying EDF header fields (patient name, code, birthdate, start
date, technician, equipment, admin code) are filled with the values in `IDENTITY`
so that tests can prove they never reach any output.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyedflib
from scipy.signal import resample_poly

# The 21 scalp electrodes of the 10-20 system as TUH names them (T3/T4/T5/T6 old names).
TUH_ELECTRODES: tuple[str, ...] = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8",
    "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ",
)

# Identifying header values written into every fixture EDF; none may reach an output.
IDENTITY: dict[str, object] = {
    # no spaces: EDF header fields are space-separated (pyedflib warns otherwise)
    "patientname": "Roe_Janet_Quill",
    "patientcode": "MRN88412397",
    "birthdate": datetime(1961, 3, 14),
    "sex": "Female",
    "startdate": datetime(2003, 7, 19, 13, 37, 42),
    "technician": "Zebediah",
    "equipment": "NicSN77713",
    "admincode": "ADM55123",
    "patient_additional": "Ward7_Bed12",
    "recording_additional": "DrQuimby",
}

# Physical range of the fixture channels; 16-bit digital gives about 0.09 uV resolution.
_PHYS_RANGE_UV = 3000.0
_SOURCE_EEG = ("tests", "data", "test_utf8.edf")


@lru_cache(maxsize=1)
def _real_trace() -> tuple[np.ndarray, float]:
    """The real single-channel EEG (Fp1, microvolts) and its rate from pyedflib's test data."""
    path = Path(pyedflib.__file__).parent.joinpath(*_SOURCE_EEG)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the EEG demo needs pyedflib's bundled test recording; "
            "reinstall pyedflib from PyPI (pip install --force-reinstall pyedflib)"
        )
    reader = pyedflib.EdfReader(str(path))
    try:
        return reader.readSignal(0), float(reader.getSampleFrequency(0))
    finally:
        reader.close()


@lru_cache(maxsize=4)
def real_eeg_at(rate_hz: float) -> np.ndarray:
    """The real Fp1 trace (microvolts, mean removed) resampled to `rate_hz` by polyphase filtering."""
    trace, rate = _real_trace()
    ratio = Fraction(rate_hz / rate).limit_denominator(1000)
    out = resample_poly(trace - trace.mean(), ratio.numerator, ratio.denominator)
    out.setflags(write=False)
    return out


def electrode_chunk_fn(
    rate_hz: float, electrodes: tuple[str, ...], offset_s: float = 0.0
) -> Callable[[int, int], np.ndarray]:
    """A function (start, stop) -> electrodes x samples in microvolts for a fixture session.

    Electrode k reads the real trace from its own offset (k * 29 s + `offset_s`),
    wrapping around the end, so any span can be produced without holding a session.
    """
    base = real_eeg_at(rate_hz)
    n = base.size
    starts = [int(round((k * 29.0 + offset_s) * rate_hz)) % n for k in range(len(electrodes))]

    def chunk(start: int, stop: int) -> np.ndarray:
        idx = np.arange(start, stop)
        return np.stack([base[(idx + s) % n] for s in starts])

    return chunk


def write_session(
    path: Path,
    *,
    duration_s: float,
    rate_hz: int = 256,
    electrodes: tuple[str, ...] = TUH_ELECTRODES,
    reference: str = "REF",
    label_format: str = "EEG {e}-{ref}",
    offset_s: float = 0.0,
    identity: dict[str, object] | None = None,
) -> Path:
    """Write one TUH-style referential EEG session as an EDF+ file with pyedflib's EdfWriter.

    `duration_s` must be a whole number of seconds (1-s data records, as TUH files).
    Channels: `label_format` per electrode (default `EEG FP1-REF`), then `PHOTIC-REF`
    (a flat stimulus channel, as many TUH sessions carry). Data is written one
    minute at a time, so sessions of any length are written in bounded memory.
    """
    if duration_s != int(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive whole number of seconds, got {duration_s}")
    ident = dict(IDENTITY if identity is None else identity)
    labels = [label_format.format(e=e, ref=reference) for e in electrodes] + ["PHOTIC-REF"]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders([
            {
                "label": label,
                "dimension": "uV",
                "sample_frequency": rate_hz,
                "physical_min": -_PHYS_RANGE_UV,
                "physical_max": _PHYS_RANGE_UV,
                "digital_min": -32768,
                "digital_max": 32767,
                "transducer": "",
                "prefilter": "",
            }
            for label in labels
        ])
        writer.setPatientName(str(ident["patientname"]))
        writer.setPatientCode(str(ident["patientcode"]))
        writer.setBirthdate(ident["birthdate"])
        writer.setSex(str(ident["sex"]))
        writer.setStartdatetime(ident["startdate"])
        writer.setTechnician(str(ident["technician"]))
        writer.setEquipment(str(ident["equipment"]))
        writer.setAdmincode(str(ident["admincode"]))
        writer.setPatientAdditional(str(ident["patient_additional"]))
        writer.setRecordingAdditional(str(ident["recording_additional"]))
        chunk = electrode_chunk_fn(float(rate_hz), electrodes, offset_s)
        total = int(duration_s) * rate_hz
        step = 60 * rate_hz
        for start in range(0, total, step):
            stop = min(start + step, total)
            block = np.clip(chunk(start, stop), -_PHYS_RANGE_UV, _PHYS_RANGE_UV)
            photic = np.zeros((1, stop - start))
            block = np.concatenate([block, photic])
            # one 1-s data record per call, signals one after another: the record layout
            # EdfWriter.writeSamples builds, without its per-record np.append
            for record in range(0, stop - start, rate_hz):
                if writer.blockWritePhysicalSamples(
                        np.ascontiguousarray(block[:, record:record + rate_hz]).ravel()) < 0:
                    raise OSError(f"pyedflib could not write a data record of {path}")
    finally:
        writer.close()
    return path


# (split, label, subject, session, token, duration_s): sessions of the miniature tree.
# Durations are chosen so window counts differ (floor(d / 10 s)) and some have a remainder.
DEMO_SESSIONS: tuple[tuple[str, str, str, int, int, int], ...] = (
    ("train", "normal", "aaaaaasb", 1, 0, 35),
    ("train", "normal", "aaaaaktz", 2, 0, 20),
    ("train", "abnormal", "aaaaamye", 1, 0, 41),
    ("train", "abnormal", "aaaaamye", 1, 1, 12),
    ("train", "abnormal", "aaaaapyl", 3, 0, 30),
    ("eval", "normal", "aaaaadpa", 1, 0, 10),
    ("eval", "abnormal", "aaaaaqjw", 1, 0, 27),
)


def session_path(split: str, label: str, subject: str, session: int, token: int) -> str:
    """Relative path of a TUAB session file, as the corpus names it."""
    return f"edf/{split}/{label}/01_tcp_ar/{subject}_s{session:03d}_t{token:03d}.edf"


def write_raw(root: Path, *, rate_hz: int = 256) -> Path:
    """Write the miniature TUAB tree under `root` (the source root); returns root.

    Seven sessions from six subjects (one subject with two token files), train and
    eval, normal and abnormal, 10-41 s each, all at `rate_hz`.
    """
    for i, (split, label, subject, session, token, duration) in enumerate(DEMO_SESSIONS):
        rel = session_path(split, label, subject, session, token)
        write_session(root / rel, duration_s=duration, rate_hz=rate_hz, offset_s=53.0 * i)
    return root


BROKEN_SESSION = "edf/train/normal/01_tcp_ar/aaaaazzz_s001_t000.edf"

# The identities as the EDF+ header stores them, and as a reader might render them (MNE
# splits the name, dates as ISO); the kit looks for each, case-insensitively, everywhere.
PHI_MARKERS: tuple[str, ...] = (
    "MRN88412397", "Roe_Janet_Quill", "14-MAR-1961", "19-JUL-2003", "19.07.03", "13.37.42",
    "ADM55123", "Zebediah", "NicSN77713", "Ward7_Bed12", "DrQuimby",
    "Janet", "Quill", "Quimby", "1961-03-14", "2003-07-19", "14 mar 1961",
)


MISSING_ELECTRODE_SESSION = "edf/train/normal/01_tcp_ar/aaaaabrk_s001_t000.edf"  # lacks T5
SHORT_SESSION = "edf/eval/normal/01_tcp_ar/aaaaashr_s001_t000.edf"  # 9 s: no whole window


def write_fixture(root: Path) -> Path:
    """The miniature plus three records that write no sample: a session file cut inside
    its EDF header and one lacking electrode T5 (both quarantined at load), and a 9-s
    session, shorter than one window (filtered)."""
    write_raw(root)
    whole = (root / session_path(*DEMO_SESSIONS[0][:5])).read_bytes()
    (root / BROKEN_SESSION).write_bytes(whole[:700])
    write_session(root / MISSING_ELECTRODE_SESSION, duration_s=20,
                  electrodes=tuple(e for e in TUH_ELECTRODES if e != "T5"))
    write_session(root / SHORT_SESSION, duration_s=9)
    return root


LONG_STEM = "aaaaaaab_s009_t000_" + "x" * 180  # 199 characters: no ustar header holds it


def long_name(root: Path, outside: Path):
    """A session file whose name (199 characters) is too long for a tar member name."""
    from medshard.testing.adversarial import Expect

    whole = (root / session_path(*DEMO_SESSIONS[0][:5])).read_bytes()
    (root / f"edf/train/normal/01_tcp_ar/{LONG_STEM}.edf").write_bytes(whole)
    return Expect(long_keys=(LONG_STEM,))


def _fixture():
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 13, "test": 3},
        quarantined={"aaaaazzz_s001_t000": "load", "aaaaabrk_s001_t000": "load"},
        filtered={"recording shorter than one 10-s window": 1},
        adversarial={"long_name": long_name},
        phi_markers=PHI_MARKERS,
        real="one real EEG channel (pyedflib's `test_utf8.edf`), written as TUH-layout EDF "
        "with a real EDF writer",
        illustrative="every electrode is that trace at a different offset (so inter-channel "
        "structure is not real); labels, header identities; a truncated session and one lacking "
        "electrode T5 (quarantined), a 9-s session (filtered)",
    )


FIXTURE = _fixture()
