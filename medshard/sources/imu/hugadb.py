"""HuGaDB: human gait database, six leg IMUs and two EMG sensors, 12 activities, 18 participants.

Raw layout (the release in romanchereshnev/HuGaDB, `HumanGaitDataBase.zip` / "HuGaDB v2"):
one tab-separated text file per recording session, named `HuGaDB_v<V>_<activity>_<PP>_<CC>.txt`
(`<PP>` participant 01-18, `<CC>` repetition; the README's template is HGD_vX_ACT_PR_CNT):

    #Activity\t<activity names in this file>
    #ActivityID\t<their ids>
    #Date-Time\t<MM-DD-HR-MN>
    acc_rf_x  acc_rf_y  acc_rf_z  gyro_rf_x ... gyro_lt_z  EMG_r  EMG_l  act
    <one row per sample: 36 int16 inertial values, 2 uint8 EMG values, the activity id>

Facts and where they came from: the 39 columns, their order (right foot, right shin,
right thigh, left foot, left shin, left thigh; accelerometer x, y, z then gyroscope x, y,
z each; right and left EMG; activity id), int16 inertial and uint8 EMG values, +-2 g and
+-2000 deg/s ranges, the three header tags and the 12 activity ids: the HuGaDB README;
the four header lines before the data: the dataset's own loader (`np.genfromtxt(...,
skip_header=4)`, Scripts/load_HuGaDB_file.py); column tokens `acc_rf_x ... EMG_r EMG_l
act`: the dataset's `create_db.py` and third-party loaders. The files carry no time
column: the rate is the README's 2,111,962 samples over 35,903 s = 58.8 Hz (third-party
loaders say 58 Hz), the `native_rate_hz` option.

What `load` yields: fixed windows of `window_s` (default 2 s) every `hop_s` (default 1 s)
from the start of the session (the IMU window standard, schemas/standards.py), each
labelled by the one activity that fills it; a window whose rows carry two activities is
dropped, and each window's meta counts the session's windows and its dropped straddling
windows (a session with no clean window is filtered). Roles, in raw ADC counts (the
README gives the full-scale ranges, not the conversion): `acc` (18 accelerometer
channels), `gyro` (18 gyroscope channels), `emg` (2), all at the IMU standard (100 Hz,
200 samples, units kept).

Labels: the activity id verbatim in `source_labels` with its README name; classes are the
12 README names (`label_set="all"`), or CLIMB's four (Sitting, Standing, Sitting down,
Standing up; `label_set="climb"`, other activities give no class and the mask holds four).
Split: no official split; keyed hash of the participant (two sessions of one participant
stay together).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from medshard.errors import UserError
from medshard.schemas import License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.schemas.standards import IMU_WINDOW
from medshard.sources.base import MissingRawData, Source, SourceOptions

# README Table 1: id -> name
ACTIVITIES = {
    1: "Walking", 2: "Running", 3: "Going up", 4: "Going down", 5: "Sitting",
    6: "Sitting down", 7: "Standing up", 8: "Standing", 9: "Bicycling", 10: "Up by elevator",
    11: "Down by elevator", 12: "Sitting in car",
}
CLIMB_ACTIVITIES = ("Sitting", "Standing", "Sitting down", "Standing up")
SENSORS = ("rf", "rs", "rt", "lf", "ls", "lt")
ACC = [f"acc_{s}_{a}" for s in SENSORS for a in "xyz"]
GYRO = [f"gyro_{s}_{a}" for s in SENSORS for a in "xyz"]
COLUMNS = [c for s in SENSORS for c in (*(f"acc_{s}_{a}" for a in "xyz"),
                                         *(f"gyro_{s}_{a}" for a in "xyz"))]
COLUMNS += ["EMG_r", "EMG_l", "act"]
README_RATE_HZ = 2111962 / 35903  # samples over seconds, README Table 1 totals
_FILE = re.compile(r"^HuGaDB_v(\d+)_([A-Za-z_]+?)_(\d{2})_(\d{2})$")


class HuGaDBOptions(SourceOptions):
    native_rate_hz: float = Field(README_RATE_HZ, gt=0.0, le=1000.0, strict=True,
                                  description="sampling rate of the files (they carry no "
                                  "time column; default: the README's samples / seconds)")
    window_s: float = Field(IMU_WINDOW.length_s, gt=0.0, le=60.0, strict=True,
                            description="window length in seconds (the IMU window standard)")
    hop_s: float = Field(IMU_WINDOW.hop_s, gt=0.0, le=60.0, strict=True,
                         description="seconds between window starts")
    label_set: Literal["all", "climb"] = Field(
        "all", description="all: the 12 activities; climb: CLIMB's four (the others give "
        "no class)")


def parse_session(text: str, name: str) -> tuple[dict[str, str], np.ndarray]:
    """(header tags, rows x 39 int array) of a HuGaDB file; RecordError on a malformed row."""
    tags: dict[str, str] = {}
    rows: list[list[int]] = []
    columns: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            key, _, value = line[1:].partition("\t")
            tags[key.strip()] = value.strip()
            continue
        fields = line.split()
        if columns is None and not fields[0].lstrip("-").isdigit():
            columns = fields
            if columns != COLUMNS:
                raise RecordError(f"{name}: column header is not HuGaDB's 39 columns "
                                  f"(starts {' '.join(columns[:3])})")
            continue
        if len(fields) != len(COLUMNS):
            raise RecordError(f"{name}: line {number} has {len(fields)} values, expected 39")
        try:
            rows.append([int(v) for v in fields])
        except ValueError:
            raise RecordError(f"{name}: line {number} holds a value that is not an integer") \
                from None
    if not rows:
        raise RecordError(f"{name}: no data rows")
    return tags, np.asarray(rows, dtype=np.int64)


class HuGaDB(Source):
    payload_members = ("acc.npy", "gyro.npy", "emg.npy")
    info: ClassVar[SourceInfo] = SourceInfo(
        name="hugadb",
        title="HuGaDB: Human Gait Database for activity recognition from wearable inertial "
        "sensor networks",
        version="v2",
        modality="imu",
        tasks=["activity recognition"],
        license=License(name="none stated (the repository 'does not have a license')",
                        url="https://github.com/romanchereshnev/HuGaDB",
                        terms_version="not stated"),
        access="open",
        homepage="https://github.com/romanchereshnev/HuGaDB",
        citation="Chereshnev R, Kertesz-Farkas A. HuGaDB: Human Gait Database for Activity "
        "Recognition from Wearable Inertial Sensor Networks. AIST 2017, LNCS 10716, Springer.",
        label_space=list(ACTIVITIES.values()),
        split_policy="no official split: keyed hash of the participant (80/10/10 by default)",
        split_unit="participant",
        published_counts=PublishedCounts(
            train=291, test=73, unit="session files",
            reference="CLIMB A.2, session files; medshard counts 2-s windows"),
        release_notes={"0.1.0": "first medshard adapter: 2-s windows every 1 s, straddling "
                       "windows dropped and counted"},
    )
    Options = HuGaDBOptions
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://github.com/romanchereshnev/HuGaDB",
        steps=[
            "Download 'HuGaDB v2' from the Dropbox or Google Drive link at the top of the "
            "README on the page above (v2 relabels sitting, standing, sitting down and "
            "standing up more precisely).",
            "Unpack it into the folder named below so that its HuGaDB_v2_*.txt files are "
            "there (any subfolder works).",
        ],
    ))
    fixture: ClassVar[str | None] = "medshard.sources.imu.hugadb_fixture:FIXTURE"

    def label_classes(self) -> list[str]:
        if self._options["label_set"] == "climb":
            return list(CLIMB_ACTIVITIES)
        return list(self.info.label_space)

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        if not any(_FILE.match(p.stem) for p in root.rglob("*.txt")):
            raise MissingRawData(f"hugadb: no HuGaDB_v*_<activity>_<PP>_<CC>.txt under {root}; "
                                 "unpack the HuGaDB archive there")

    def list_records(self, root: Path) -> Iterator[RawRecord]:
        """One record per session file, sorted; reads no file content."""
        self.check_root(root)
        seen: dict[str, str] = {}
        for path in sorted(root.rglob("*.txt")):
            m = _FILE.match(path.stem)
            if m is None:
                continue
            rel = path.relative_to(root).as_posix()
            record_id = path.stem.replace(".", "-")
            if record_id in seen:
                raise UserError(f"hugadb: {rel} and {seen[record_id]} are both {path.name}; "
                                "remove the duplicate copy")
            seen[record_id] = rel
            yield RawRecord(
                record_id=record_id,
                subject_id=m.group(3),
                files=[rel],
                size_bytes=path.stat().st_size,
                meta={"file_activity": m.group(2), "repetition": int(m.group(4)),
                      "format_version": int(m.group(1))},
            )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        """The session's clean windows (see the module docstring)."""
        with open(self.path(root, record.files[0]), encoding="utf-8", errors="replace") as f:
            _, table = parse_session(f.read(), record.files[0])
        acts = table[:, -1]
        unknown = sorted(set(acts.tolist()) - set(ACTIVITIES))
        if unknown:
            raise RecordError(f"{record.files[0]}: activity id(s) {unknown} not in 1..12")
        fs = float(self._options["native_rate_hz"])
        win = int(round(self._options["window_s"] * fs))
        hop = int(round(self._options["hop_s"] * fs))
        if win < 1 or hop < 1:
            raise RecordError(f"window {win} or hop {hop} samples at {fs:g} Hz is empty")
        starts = range(0, len(table) - win + 1, hop)
        clean = [s for s in starts if (acts[s : s + win] == acts[s]).all()]
        straddling = len(starts) - len(clean)
        if not clean:
            raise Filtered("no window inside one activity")
        climb = self._options["label_set"] == "climb"
        common: dict[str, Any] = {
            **record.meta, "native_rate_hz": fs, "window_s": self._options["window_s"],
            "hop_s": self._options["hop_s"], "session_windows": len(starts),
            "session_windows_straddling": straddling,
            "full_scale": {"acc": "+-2 g", "gyro": "+-2000 deg/s", "emg": "uint8"},
        }
        roles = {"acc": ACC, "gyro": GYRO, "emg": ["EMG_r", "EMG_l"]}
        for i, s in enumerate(clean):
            rows = table[s : s + win].T.astype(np.float64)
            activity = ACTIVITIES[int(acts[s])]
            yield Sample(
                key_suffix=f"w{i:04d}",
                classes=[] if climb and activity not in CLIMB_ACTIVITIES else [activity],
                source_labels={"activity_id": int(acts[s]), "activity": activity},
                payloads={role: Payload("signal", rows[[COLUMNS.index(c) for c in names]], {
                    "sampling_rate_hz": fs, "channels": names, "units": "adu",
                    "standard": "imu"}) for role, names in roles.items()},
                meta={**common, "window_index": i, "window_start_s": s / fs},
                task="activity recognition",
            )
