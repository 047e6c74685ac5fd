"""A miniature HuGaDB v2 in its release layout: tab-separated session files with the header tags.

Real: the accelerometer channels are a real gait recording: Daphnet freezing-of-gait
subject 6 run 2 (3-axis accelerometers in mg on ankle, thigh and trunk at 64 Hz, 110 s;
CC BY 4.0), taken out of aeon 1.6.0's wheel by `medshard.testing.realdata` (aeon itself
is not a dependency: it pins its own numpy and pandas). Its ankle sensor gives HuGaDB's
foot and shin accelerometers, its thigh sensor the thigh accelerometer (forward,
vertical, lateral as x, y, z), converted from mg to the +-2 g int16 counts HuGaDB stores
(16.384 counts per mg) and linearly interpolated from 64 Hz to the README's 58.8 Hz.
Static activities (sitting, standing) are cut from the recording's first 18 s, where the
subject stands still; transitions from its onset of walking (14-30 s); gait activities
from its walking part (from 24 s); each session at its own offset.
Illustrative: the left leg (the right leg's signals half a stride later), which activity
label goes with which stretch, the gyroscope channels (a per-activity periodic pattern plus
seeded noise) and the EMG values, participants and sessions. The file format is real: the
README's 39 columns in order, the `#Activity`, `#ActivityID`, `#Date-Time` tags and the
column-name line, tab-separated. Broken on purpose: a session with a malformed row
(quarantined), one with an activity id outside 1..12 (quarantined), and one too short for
a single window (filtered).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.sources.imu.hugadb import ACTIVITIES, COLUMNS, README_RATE_HZ
from medshard.testing import realdata
from medshard.testing.fixture import Fixture

DATE_MARKER = "05-17-14-29"  # the #Date-Time tag (month-day-hour-minute); never leaves
# activity id -> (stride frequency Hz, accelerometer amplitude in counts)
_PATTERN = {1: (1.0, 6000), 2: (1.5, 12000), 5: (0.0, 0), 6: (0.5, 3000), 7: (0.5, 3000),
            8: (0.0, 0), 3: (0.8, 7000), 4: (0.9, 7000)}


# where in the Daphnet recording (seconds) each kind of activity is cut from
_STATIC, _TRANSITION, _GAIT = (0.0, 18.0), (14.0, 30.0), (24.0, 110.0)
_REGION = {5: _STATIC, 8: _STATIC, 6: _TRANSITION, 7: _TRANSITION,
           1: _GAIT, 2: _GAIT, 3: _GAIT, 4: _GAIT}
_COUNTS_PER_MG = 32768 / 2000  # int16 full scale over +-2 g
_HALF_STRIDE_S = 0.55


def daphnet_accelerometers() -> np.ndarray:
    """The real recording at the README's rate: rows x 9 (ankle, thigh, trunk; fwd, vert, lat)."""
    path = realdata.get("daphnet-s06r02")
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, 10))
    t_in = np.arange(len(raw)) / 64.0
    t_out = np.arange(int(t_in[-1] * README_RATE_HZ)) / README_RATE_HZ
    return np.column_stack([np.interp(t_out, t_in, raw[:, c]) for c in range(9)])


def session_rows(segments: list[tuple[int, float]], seed: int,
                 real: np.ndarray | None = None) -> np.ndarray:
    """rows x 39 ints: (activity id, seconds) segments one after another."""
    real = daphnet_accelerometers() if real is None else real
    rng = np.random.default_rng(seed)
    lag = int(round(_HALF_STRIDE_S * README_RATE_HZ))
    parts = []
    for act, seconds in segments:
        n = int(round(seconds * README_RATE_HZ))
        lo, hi = (int(x * README_RATE_HZ) for x in _REGION[act])
        start = int(rng.integers(lo, max(lo + 1, hi - n - lag)))
        right = real[start:start + n] * _COUNTS_PER_MG
        left = real[start + lag:start + lag + n] * _COUNTS_PER_MG
        t = np.arange(n) / README_RATE_HZ
        freq, amp = _PATTERN[act]
        phase = rng.uniform(0, 2 * np.pi, 18)
        gyro = amp * np.sin(2 * np.pi * freq * t[:, None] + phase[None, :])
        gyro += rng.normal(0, 150, (n, 18))
        imu = []
        for leg, acc in (("r", right), ("l", left)):
            for i, sensor in enumerate((acc[:, 0:3], acc[:, 0:3], acc[:, 3:6])):  # foot, shin, thigh
                g = 9 * (leg == "l") + 3 * i
                imu += [sensor, gyro[:, g:g + 3]]
        emg = np.clip(rng.normal(40 + amp / 400, 8, (n, 2)), 0, 255)
        rows = np.column_stack([np.clip(np.round(np.hstack(imu)), -32768, 32767), np.round(emg),
                                np.full(n, act)])
        parts.append(rows.astype(np.int64))
    return np.concatenate(parts)


def write_session(path: Path, segments: list[tuple[int, float]], seed: int,
                  real: np.ndarray | None = None) -> np.ndarray:
    rows = session_rows(segments, seed, real)
    ids = list(dict.fromkeys(a for a, _ in segments))
    names = [ACTIVITIES[a].lower().replace(" ", "_") for a in ids]
    lines = [f"#Activity\t{' '.join(names)}", f"#ActivityID\t{' '.join(map(str, ids))}",
             f"#Date-Time\t{DATE_MARKER}", "\t".join(COLUMNS)]
    lines += ["\t".join(str(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return rows


SESSIONS = {
    "HuGaDB_v2_various_01_00": [(5, 4.0), (7, 2.5), (8, 4.0), (1, 5.0)],
    "HuGaDB_v2_various_02_00": [(8, 3.0), (6, 2.5), (5, 4.0)],
    "HuGaDB_v2_walking_03_00": [(1, 6.0)],
    "HuGaDB_v2_various_04_00": [(3, 3.0), (4, 3.0), (2, 3.0)],
    "HuGaDB_v2_sitting_05_00": [(5, 5.0)],
}


def write_fixture(root: Path) -> Path:
    base = root / "HuGaDB v2"
    real = daphnet_accelerometers()
    for i, (name, segments) in enumerate(SESSIONS.items()):
        write_session(base / f"{name}.txt", segments, seed=100 + i, real=real)
    bad = base / "HuGaDB_v2_standing_06_00.txt"  # a malformed row
    write_session(bad, [(8, 3.0)], seed=7, real=real)
    lines = bad.read_text().splitlines()
    lines[20] = lines[20].rsplit("\t", 5)[0]
    bad.write_text("\n".join(lines) + "\n")
    odd = base / "HuGaDB_v2_walking_07_00.txt"  # activity id 13 does not exist
    write_session(odd, [(1, 3.0)], seed=8, real=real)
    odd.write_text(odd.read_text().replace("\t1\n", "\t13\n", 5))
    write_session(base / "HuGaDB_v2_standing_08_00.txt", [(8, 1.0)], seed=9, real=real)  # < 2 s
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 18, "val": 4},
    quarantined={"HuGaDB_v2_standing_06_00": "load", "HuGaDB_v2_walking_07_00": "load"},
    filtered={"no window inside one activity": 1},
    phi_markers=(DATE_MARKER,),
    real="the accelerometers: Daphnet's real gait recording (ankle, thigh; aeon 1.6.0's wheel) "
    "in HuGaDB counts at 58.8 Hz; the HuGaDB file format (39 columns, header tags, "
    "tab-separated)",
    illustrative="the left leg (the right half a stride later), which stretch is which "
    "activity, gyroscopes and EMG (periodic patterns plus seeded noise); participants, "
    "sessions; a malformed row and an unknown activity id (quarantined), a session shorter "
    "than one window (filtered)",
)
