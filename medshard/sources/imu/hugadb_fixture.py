"""A miniature HuGaDB v2 in its release layout: tab-separated session files with the header tags.

Illustrative, all of it: no real leg-IMU recording ships inside medshard's dependencies
(aeon 1.6.0's Daphnet accelerometer CSV would be one, but installing aeon replaces numpy
and pandas in the environment; aeon-neuro pulls braindecode and more), so the inertial
and EMG values are generated: per activity, a gait-like periodic pattern (stride
frequency, amplitude) plus seeded noise, as int16 / uint8 counts. The file format is
real: the README's 39 columns in order, the `#Activity`, `#ActivityID`, `#Date-Time`
tags and the column-name line, tab-separated. Broken on purpose: a session with a
malformed row (quarantined), one with an activity id outside 1..12 (quarantined), and
one too short for a single window (filtered).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medshard.sources.imu.hugadb import ACTIVITIES, COLUMNS, README_RATE_HZ
from medshard.testing.fixture import Fixture

DATE_MARKER = "05-17-14-29"  # the #Date-Time tag (month-day-hour-minute); never leaves
# activity id -> (stride frequency Hz, accelerometer amplitude in counts)
_PATTERN = {1: (1.0, 6000), 2: (1.5, 12000), 5: (0.0, 0), 6: (0.5, 3000), 7: (0.5, 3000),
            8: (0.0, 0), 3: (0.8, 7000), 4: (0.9, 7000)}


def session_rows(segments: list[tuple[int, float]], seed: int) -> np.ndarray:
    """rows x 39 ints: (activity id, seconds) segments one after another."""
    rng = np.random.default_rng(seed)
    parts = []
    for act, seconds in segments:
        n = int(round(seconds * README_RATE_HZ))
        t = np.arange(n) / README_RATE_HZ
        freq, amp = _PATTERN[act]
        phase = rng.uniform(0, 2 * np.pi, 36)
        wave = amp * np.sin(2 * np.pi * freq * t[:, None] + phase[None, :])
        imu = wave + rng.normal(0, 150, (n, 36)) + np.where(np.arange(36) % 6 == 2, 16384, 0)
        emg = np.clip(rng.normal(40 + amp / 400, 8, (n, 2)), 0, 255)
        rows = np.column_stack([np.clip(np.round(imu), -32768, 32767), np.round(emg),
                                np.full(n, act)])
        parts.append(rows.astype(np.int64))
    return np.concatenate(parts)


def write_session(path: Path, segments: list[tuple[int, float]], seed: int) -> np.ndarray:
    rows = session_rows(segments, seed)
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
    for i, (name, segments) in enumerate(SESSIONS.items()):
        write_session(base / f"{name}.txt", segments, seed=100 + i)
    bad = base / "HuGaDB_v2_standing_06_00.txt"  # a malformed row
    write_session(bad, [(8, 3.0)], seed=7)
    lines = bad.read_text().splitlines()
    lines[20] = lines[20].rsplit("\t", 5)[0]
    bad.write_text("\n".join(lines) + "\n")
    odd = base / "HuGaDB_v2_walking_07_00.txt"  # activity id 13 does not exist
    write_session(odd, [(1, 3.0)], seed=8)
    odd.write_text(odd.read_text().replace("\t1\n", "\t13\n", 5))
    write_session(base / "HuGaDB_v2_standing_08_00.txt", [(8, 1.0)], seed=9)  # < 2 s
    return root


FIXTURE = Fixture(
    write=write_fixture,
    samples={"train": 18, "val": 4},
    quarantined={"HuGaDB_v2_standing_06_00": "load", "HuGaDB_v2_walking_07_00": "load"},
    filtered={"no window inside one activity": 1},
    phi_markers=(DATE_MARKER,),
    real="the HuGaDB file format (39 columns, header tags, tab-separated); no real leg-IMU "
    "recording ships in the dependencies",
    illustrative="all values: per-activity periodic patterns plus seeded noise; participants, "
    "sessions; a malformed row and an unknown activity id (quarantined), a session shorter "
    "than one window (filtered)",
)
