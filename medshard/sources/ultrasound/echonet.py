"""EchoNet-Dynamic: 10,030 apical-4-chamber echocardiography videos (Stanford AIMI), v1.0.

Raw layout (as Stanford AIMI ships it, folder `EchoNet-Dynamic/`):
    FileList.csv         FileName (no extension), EF, ESV, EDV, FrameHeight, FrameWidth,
                         FPS, NumberOfFrames, Split (TRAIN / VAL / TEST)
    VolumeTracings.csv   FileName (with .avi), X1, Y1, X2, Y2, Frame: one row per traced
                         line; per traced frame the first line is the LV long axis, the
                         others the perpendicular chords; two traced frames per video
    Videos/<FileName>.avi   112 x 112 cine loops
The data root may be the folder holding these files or the folder that holds
`EchoNet-Dynamic/`.

A sample is one video, kept as the original AVI bytes (member `video.avi`): no
decode, no re-encode. Its descriptor (fps, frame count, size) is read from the
AVI header (`medshard.formats.avi.parse_avi`), which describes the bytes a
decoder will actually see; FileList.csv's FPS / NumberOfFrames / FrameHeight /
FrameWidth are cross-checked against it. When they disagree the header wins
(it is what the bytes hold), the sample is kept, and the FileList values are
kept in `meta["filelist"]` so the disagreement is visible. A traced frame past
the video's last frame is a broken annotation: the record is quarantined.

Targets (task "regression", no classes): `meta` holds `ef_percent`, `esv_ml`,
`edv_ml` (FileList EF, ESV, EDV), and `tracings`, a list of
`{"frame": n, "lines": [[x1, y1, x2, y2], ...]}` in file order (pixel
coordinates of the 112 x 112 frame). Following EchoNet's own loader, the first
traced frame is end-systole (`es_frame`) and the last is end-diastole
(`ed_frame`); both are set only when at least two frames are traced. Videos
without tracings are kept (EF needs none) with `tracings: []`; a video without
EF is filtered.

Split: the Split column (TRAIN -> train, VAL -> val, TEST -> test; "VALID", as
CLIMB's loader spells it, also -> val). Each video is a distinct patient
(per the dataset paper), so the subject id is the FileName.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from medshard.formats.avi import parse_avi
from medshard.schemas import BadRow, License, Payload, RawRecord, RecordError, Sample, SourceInfo
from medshard.schemas.download import DownloadSpec, FileSpec, ManualSteps
from medshard.schemas.models import PublishedCounts
from medshard.schemas.sample import Filtered
from medshard.sources.base import MissingRawData, Source

log = logging.getLogger("medshard.sources.echonet")

RELEASE_DIR = "EchoNet-Dynamic"
SPLITS = {"TRAIN": "train", "VAL": "val", "VALID": "val", "VALIDATION": "val", "TEST": "test"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Header and FileList frame rates agree when within this many frames per second.
FPS_TOLERANCE = 0.01


def _float_or_none(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    return None if math.isnan(value) else value


def _int_or_none(text: str | None) -> int | None:
    value = _float_or_none(text)
    return None if value is None else int(round(value))


def read_tracings(path: Path) -> dict[str, list[dict[str, Any]]]:
    """VolumeTracings.csv as {video stem: [{"frame": n, "lines": [[x1, y1, x2, y2], ...]}]}.

    Frames keep the order in which the file first lists them; lines keep file order.
    """
    by_video: dict[str, dict[int, list[list[float]]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            stem = Path(row["FileName"].strip()).stem
            frame = int(float(row["Frame"]))
            line = [float(row["X1"]), float(row["Y1"]), float(row["X2"]), float(row["Y2"])]
            by_video.setdefault(stem, {}).setdefault(frame, []).append(line)
    return {
        stem: [{"frame": frame, "lines": lines} for frame, lines in frames.items()]
        for stem, frames in by_video.items()
    }


class EchoNetDynamic(Source):
    fixture = "medshard.sources.ultrasound.echonet_fixture:FIXTURE"
    # Stanford AIMI hands out download links per registered user: steps, then verification.
    download: ClassVar[DownloadSpec | None] = DownloadSpec(provider="manual", manual=ManualSteps(
        url="https://stanfordaimi.azurewebsites.net/datasets/834e1cd1-92f7-4268-9daa-d359198b310a",
        steps=[
            "Sign in (or register) at the Stanford AIMI page above and accept the research use "
            "agreement.",
            "Download EchoNet-Dynamic.zip with the link you receive.",
            "Put the zip file, or the folder unpacked from it, into the folder named below.",
        ],
        layouts={"release": [FileSpec(path="EchoNet-Dynamic/FileList.csv"),
                             FileSpec(path="EchoNet-Dynamic/VolumeTracings.csv")],
                 "flat": [FileSpec(path="FileList.csv"), FileSpec(path="VolumeTracings.csv")]},
        archives=[FileSpec(path="EchoNet-Dynamic.zip")],
    ))
    payload_members = ("video.avi",)
    info: ClassVar[SourceInfo] = SourceInfo(
        name="echonet-dynamic",
        title="EchoNet-Dynamic: echocardiography videos with ejection fraction and LV tracings",
        version="1.0",
        modality="ultrasound",
        tasks=["regression", "segmentation"],
        license=License(
            name="Stanford University Dataset Research Use Agreement",
            url="https://stanfordaimi.azurewebsites.net/datasets/834e1cd1-92f7-4268-9daa-d359198b310a",
            terms_version="2020",
            non_commercial=True,
        ),
        access="registration",
        homepage="https://echonet.github.io/dynamic/",
        citation=(
            "Ouyang D, He B, Ghorbani A, et al. Video-based AI for beat-to-beat assessment of "
            "cardiac function. Nature 580, 252-256 (2020)."
        ),
        label_space=[],
        split_policy="the Split column of FileList.csv (TRAIN / VAL / TEST)",
        release_notes={"0.1.0": "first medshard adapter: original AVI bytes, EF targets, tracings"},
        published_counts=PublishedCounts(
            train=8196, test=2051, unit="videos",
            reference="CLIMB A.2; 10,030 videos described",
        ),
    )

    def release_dir(self, root: Path) -> Path:
        """The folder holding FileList.csv: the root itself or `EchoNet-Dynamic/` inside it."""
        for candidate in (root, root / RELEASE_DIR):
            if (candidate / "FileList.csv").is_file():
                return candidate
        raise MissingRawData(
            f"echonet-dynamic: FileList.csv not found in {root} or {root}/{RELEASE_DIR}/"
        )

    def check_root(self, root: Path) -> None:
        super().check_root(root)
        release = self.release_dir(root)
        if not (release / "Videos").is_dir():
            raise MissingRawData(f"echonet-dynamic: {release}/Videos/ is missing")

    def list_records(self, root: Path) -> Iterator[RawRecord | BadRow]:
        release = self.release_dir(root)
        prefix = release.relative_to(root)
        tracings_csv = release / "VolumeTracings.csv"
        tracings = (read_tracings(self.path(root, tracings_csv.relative_to(root)))
                    if tracings_csv.is_file() else {})
        yield from self.csv_records(root, (prefix / "FileList.csv").as_posix(),
                                    lambda row: self._record(root, prefix, row, tracings))

    def _record(self, root: Path, prefix: Path, row: dict[str, str],
                tracings: dict[str, list[dict[str, Any]]]) -> RawRecord:
        """One FileList.csv row as a record; raises (a bad row) on a malformed cell."""
        stem = Path(row["FileName"].strip()).stem
        rel = (prefix / "Videos" / f"{stem}.avi").as_posix()
        video = root / rel
        raw_split = (row.get("Split") or "").strip().upper()
        meta: dict[str, Any] = {
            "filelist": {
                "fps": _float_or_none(row.get("FPS")),
                "n_frames": _int_or_none(row.get("NumberOfFrames")),
                "height": _int_or_none(row.get("FrameHeight")),
                "width": _int_or_none(row.get("FrameWidth")),
            },
            "tracings": tracings.get(stem, []),
        }
        if raw_split not in SPLITS:
            # not an official value: the pipeline assigns a keyed-hash split instead
            meta["filelist_split"] = raw_split
        return RawRecord(
            record_id=_UNSAFE.sub("_", stem),
            subject_id=stem,
            files=[rel],
            source_labels={k: _float_or_none(row.get(k)) for k in ("EF", "ESV", "EDV")},
            split=SPLITS.get(raw_split),  # type: ignore[arg-type]
            size_bytes=video.stat().st_size if video.is_file() else 0,
            meta=meta,
        )

    def load(self, record: RawRecord, root: Path) -> Iterator[Sample]:
        labels = record.source_labels
        if labels.get("EF") is None:
            raise Filtered("no ejection fraction in FileList.csv")
        path = self.path(root, record.files[0])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecordError(
                f"video {record.files[0]} listed in FileList.csv is missing; re-download it"
            ) from None
        avi = parse_avi(data)

        tracings = record.meta.get("tracings", [])
        for t in tracings:
            if not 0 <= t["frame"] < avi.n_frames:
                raise RecordError(
                    f"VolumeTracings.csv traces frame {t['frame']} but the video has "
                    f"{avi.n_frames} frames"
                )
        meta: dict[str, Any] = {
            "ef_percent": labels["EF"],
            "esv_ml": labels.get("ESV"),
            "edv_ml": labels.get("EDV"),
            "codec": avi.codec,
            "tracings": tracings,
            # every key in every sample (null when not known): one JSON shape per source
            "es_frame": tracings[0]["frame"] if len(tracings) >= 2 else None,
            "ed_frame": tracings[-1]["frame"] if len(tracings) >= 2 else None,
            "filelist": None,
            "filelist_split": record.meta.get("filelist_split"),
        }
        listed = record.meta.get("filelist", {})
        header = {"fps": avi.fps, "n_frames": avi.n_frames, "height": avi.height,
                  "width": avi.width}
        disagree = sorted(
            k for k, v in listed.items()
            if v is not None and (abs(v - header[k]) > FPS_TOLERANCE if k == "fps" else v != header[k])
        )
        if disagree:
            # the header describes the bytes we ship; FileList's values stay visible in meta
            meta["filelist"] = listed
            log.warning("%s: FileList.csv %s disagree with the AVI header; header kept",
                        record.record_id, ", ".join(disagree))

        yield Sample(
            classes=[],
            source_labels=dict(labels),
            payloads={
                "video": Payload(
                    kind="video",
                    data=data,
                    descriptor={
                        "fps": avi.fps,
                        "n_frames": avi.n_frames,
                        "height": avi.height,
                        "width": avi.width,
                        "channels": avi.channels,
                        "encoding": "avi",
                    },
                )
            },
            meta=meta,
            task="regression",
        )
